package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// w5 measures a burst: N one-off jobs all due at the same instant T. Tock: N jobs with an
// `at` schedule, created through the API before T; Asynq (the peer): N tasks enqueued with
// ProcessAt(T). From T on, how fast the handlers start and when the last one starts. Every
// repetition runs on a fresh cluster (or Redis), so none inherits the rows of another.
type w5 struct{}

func (w5) ID() string   { return "W5" }
func (w5) Name() string { return "burst: one-off jobs all due at the same instant" }

const (
	w5Prefix = "w5-"
	// w5Wait is how long after T the handlers may still start and results be committed.
	w5Wait = 5 * time.Minute
	// w5Callers is how many parallel callers create the jobs or enqueue the tasks.
	w5Callers = 16
)

// w5Size returns the number of jobs: 100,000, or 5,000 with -quick.
func w5Size(quick bool) int {
	if quick {
		return 2000
	}
	return 100000
}

// w5Lead returns how far ahead T lies when creating n jobs at rate per second is expected to
// take most of it.
func w5Lead(n int, rate float64, quick bool) time.Duration {
	lead := time.Duration(float64(n) / rate * float64(time.Second))
	if quick {
		return lead + 2*time.Second
	}
	return lead + 5*time.Second
}

// w5Reps returns the repetitions of each case: env.Reps, or one with -quick.
func w5Reps(env *Env) int {
	if env.Quick {
		return 1
	}
	return env.Reps
}

// w5Tag is the status tag of repetition rep (from 0) of a case.
func w5Tag(env *Env, c string, rep int) string {
	return fmt.Sprintf("W5 %s rep %d/%d", c, rep+1, w5Reps(env))
}

func (w w5) Run(ctx context.Context, env *Env) ([]Result, error) {
	n := w5Size(env.Quick)
	tockCase := fmt.Sprintf("%dk", n/1000)
	asynqCase := "asynq-" + tockCase
	chosen, err := env.selectCases([]string{tockCase, asynqCase})
	if err != nil {
		return nil, err
	}
	var out []Result
	var tock *Result
	if slices.Contains(chosen, tockCase) {
		r, err := w.runTock(ctx, env, tockCase, n)
		if err != nil {
			return out, fmt.Errorf("case %s: %w", tockCase, err)
		}
		out = append(out, r)
		tock = &out[len(out)-1]
	}
	if slices.Contains(chosen, asynqCase) {
		r, err := w.runAsynq(ctx, env, asynqCase, n)
		if errors.Is(err, errNoRedis) {
			env.statusf("W5 "+asynqCase, "skipped: %v", err)
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("case %s: %w", asynqCase, err)
		}
		if tock != nil {
			r.Notes = append(r.Notes, ratioNote("Tock ÷ Asynq", tock, &r, "fire_rate", "last_start", "lateness_p50"))
		}
		out = append(out, r)
	}
	return out, nil
}

// w5Summary is the summary line of a W5 case.
func w5Summary(r *Result, prefix string) string {
	med := func(k string) string {
		m := r.find(k)
		if m == nil {
			return "–"
		}
		return formatValue(r.medianOf(k), m.Unit)
	}
	total := func(k string) string {
		if r.find(k) == nil {
			return "–"
		}
		return formatValue(r.totalOf(k), "count")
	}
	counts := []string{"not run " + total("not_run"), "run twice " + total("run_twice")}
	if r.find("missed") != nil {
		counts = append(counts, "missed "+total("missed"), "duplicate "+total("duplicate"))
	}
	return fmt.Sprintf("%s%s fires/s (target ≥ 20k/s), last start %s after T, start lateness p50 %s; all done after %s; "+
		"in all repetitions: %s", prefix, med("fire_rate"), med("last_start"), med("lateness_p50"), med("all_done"),
		strings.Join(counts, ", "))
}

// addBurst adds the figures every W5 case has, from the judged runs of n jobs due at T.
func addBurst(r *Result, j runJudgement, n int) {
	rate := math.NaN()
	if j.lastStart > 0 {
		rate = float64(j.ran) / (j.lastStart / 1000)
	}
	r.add("fire_rate", "fires/s (runs ÷ time from T to the last start)", "/s", "≥ 20k/s", rate)
	r.add("last_start", "time from T to the last start", "ms", "", j.lastStart)
	r.addDist("lateness", "start lateness (handler start − T)", "ms", [3]string{}, j.lateness)
	r.add("not_run", "not run within 5 min", "count", "0", float64(n-j.ran))
	r.add("run_twice", "run twice", "count", "0", float64(j.dup))
	r.add("early", "started before T", "count", "0", float64(j.early))
}

// runTock measures the burst on Tock: per repetition a fresh cluster, n one-off jobs created
// through the API (16 callers) with `at` T, then the fires and handler starts from T.
func (w w5) runTock(ctx context.Context, env *Env, name string, n int) (Result, error) {
	r := Result{Workload: "W5", Case: name, Title: fmt.Sprintf("Burst: %d one-off jobs due at the same instant (Tock)", n)}
	rate := 1200.0 // jobs created per second, a guess for the first repetition
	if env.Quick {
		rate = 2000
	}
	var overran []string
	var activity []string
	for rep := range w5Reps(env) {
		var created w5Created
		var act string
		var err error
		for attempt := 1; ; attempt++ {
			created, act, err = w.tockRep(ctx, env, &r, name, rep, n, rate)
			var over *errOverrun
			if !errors.As(err, &over) || attempt == 4 {
				break
			}
			// Start again on a fresh cluster, with T further ahead.
			rate = over.rate / 1.6
			env.statusf(w5Tag(env, name, rep), "creating at %.0f jobs/s would end after T: starting again with T further ahead", over.rate)
		}
		if err != nil {
			return r, err
		}
		if created.over > 0 {
			overran = append(overran, fmt.Sprintf("repetition %d: the last job was created %s after T", rep+1,
				created.over.Round(time.Millisecond)))
		}
		activity = append(activity, fmt.Sprintf("repetition %d: %s", rep+1, act))
		rate = created.rate / 1.3
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("%d jobs with schedule `at: T` (one-off) created through the API (gRPC CreateJob, %d callers in "+
			"parallel) on a fresh cluster per repetition; T is a whole second far enough ahead for the creation "+
			"(estimated from the previous repetition's creation rate). When the creation's pace shows it would end "+
			"after T, the repetition starts again on a fresh cluster with T further ahead: a one-off job created after "+
			"its `at` never fires (its first fire is the schedule's next time after its creation, and there is none).", n, w5Callers),
		"Fires/s: the jobs that ran ÷ the time from T to the last handler start (the burst worked off, end to end). "+
			"Start lateness: handler start − T, every job. Fires recorded: from the fires table (outcome, fired_at) of "+
			"the case's database; fires recorded/s: DISPATCHED fires ÷ the time from the first to the last fired_at. "+
			"All done: from T until no execution of the burst was pending, assigned or running (every result committed; "+
			"polled every 100 ms).",
		"Missed: jobs without a DISPATCHED fire at T; duplicate: fires or first-attempt executions beyond one per job; "+
			"not run / run twice: from the handler's own records.",
		"Where the time went, pg_stat_activity of the case's database sampled every 250 ms from T until the last "+
			"start (share of backend samples, by state and wait event): "+strings.Join(activity, "; ")+".")
	if len(overran) > 0 {
		r.Notes = append(r.Notes, "Creation overran T ("+strings.Join(overran, "; ")+"): the jobs created after T "+
			"never fired and count as not run.")
	}
	if env.Quick {
		r.Notes = append(r.Notes, "Quick run: one repetition.")
	}
	r.Summary = w5Summary(&r, "Tock: ")
	return r, nil
}

// w5Created is how the creation of a repetition's jobs went.
type w5Created struct {
	rate float64       // jobs per second
	over time.Duration // how long after T the last was created; 0 when before
}

func (w w5) tockRep(ctx context.Context, env *Env, r *Result, name string, rep, n int, rate float64) (cr w5Created, activity string, err error) {
	tag := w5Tag(env, name, rep)
	c, err := env.startTock(ctx, clusterConfig{Name: "w5", Capacity: min(max(n, 100), 100000)})
	if err != nil {
		return cr, "", err
	}
	defer func() {
		if cerr := c.close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()
	db, err := pgx.Connect(ctx, env.PG.url(c.db))
	if err != nil {
		return cr, "", fmt.Errorf("connect to %s: %w", c.db, err)
	}
	defer db.Close(context.WithoutCancel(ctx))

	at := nextInstant(time.Now().Add(w5Lead(n, rate, env.Quick)), time.Second)
	env.statusf(tag, "creating %d jobs due at %s", n, at.UTC().Format("15:04:05"))
	jobs := make([]*tockv1.Job, n)
	for i := range jobs {
		jobs[i] = noopJob(fmt.Sprintf("%s%06d", w5Prefix, i), "")
		jobs[i].Schedule = &tockv1.Schedule{Trigger: &tockv1.Schedule_At{At: timestamppb.New(at)}, Timezone: "UTC"}
	}
	t0 := time.Now()
	var created atomic.Int64
	err = forEach(ctx, env, tag, "creating jobs", n, w5Callers, func(ctx context.Context, i int) error {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if _, err := c.jobs.CreateJob(cctx, &tockv1.CreateJobRequest{Job: jobs[i]}); err != nil {
			return fmt.Errorf("create job %s: %w", jobs[i].GetName(), err)
		}
		return checkPace(t0, at, int(created.Add(1)), n)
	})
	if err != nil {
		return cr, "", err
	}
	cr.rate = float64(n) / time.Since(t0).Seconds()
	cr.over = max(time.Since(at), 0)
	r.add("create_rate", "jobs created/s (API)", "/s", "", cr.rate)

	if err := waitInstant(ctx, env, tag, at.Add(-1500*time.Millisecond), at); err != nil {
		return cr, "", err
	}
	if err := c.alive(); err != nil {
		return cr, "", err
	}
	a := tockUsage(c)
	sampler := startBurstSampler(ctx, env, c.db)
	ran, err := waitCount(ctx, env, tag, n, at.Add(w5Wait), c.alive, func(ctx context.Context) (int, error) {
		return c.records.count(ctx, recordFilter{Prefix: w5Prefix})
	})
	activity = sampler.stop()
	if err != nil {
		return cr, activity, err
	}
	done, err := waitUnfinished(ctx, env, tag, db, at, at.Add(w5Wait))
	if err != nil {
		return cr, activity, err
	}
	b := tockUsage(c)

	recs, err := c.records.records(ctx, recordFilter{Prefix: w5Prefix})
	if err != nil {
		return cr, activity, fmt.Errorf("read the handler's records: %w", err)
	}
	runs := make([]asynqRun, len(recs))
	for i, rec := range recs {
		runs[i] = asynqRun{id: rec.ID, job: rec.Job, nominal: at.UnixNano(), start: rec.Start}
	}
	j := judgeRuns(runs, n)
	addBurst(r, j, n)
	r.add("all_done", "all done (committed) after T", "ms", "", done)

	var fires, dispatched, dupExec, retried int
	var firstFired, lastFired time.Time
	err = db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE outcome = 'dispatched'), min(fired_at), max(fired_at)
		FROM fires WHERE job LIKE $1 AND nominal_time = $2`, w5Prefix+"%", at).Scan(&fires, &dispatched, &firstFired, &lastFired)
	if err != nil {
		return cr, activity, fmt.Errorf("count fires: %w", err)
	}
	err = db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE attempt = 1) - count(DISTINCT job) FILTER (WHERE attempt = 1),
		count(*) FILTER (WHERE attempt > 1) FROM executions WHERE job LIKE $1`, w5Prefix+"%").Scan(&dupExec, &retried)
	if err != nil {
		return cr, activity, fmt.Errorf("count executions: %w", err)
	}
	recRate := math.NaN()
	if d := lastFired.Sub(firstFired); d > 0 {
		recRate = float64(dispatched) / d.Seconds()
	}
	r.add("recorded_rate", "fires recorded/s (first to last fired_at)", "/s", "", recRate)
	r.add("first_recorded", "first fire recorded − T", "ms", "", ms(firstFired.Sub(at)))
	r.add("last_recorded", "last fire recorded − T", "ms", "", ms(lastFired.Sub(at)))
	r.add("missed", "missed (no DISPATCHED fire)", "count", "0", float64(n-dispatched))
	r.add("duplicate", "duplicate fires or executions", "count", "0", float64(fires-dispatched+dupExec))
	r.add("retried", "retried executions", "count", "0", float64(retried))
	per := func(d time.Duration) float64 {
		if j.ran == 0 {
			return math.NaN()
		}
		return float64(d) / float64(time.Microsecond) / float64(j.ran)
	}
	r.add("tockd_cpu", "tockd CPU per fire", "µs", "", per(b.tockd.CPU-a.tockd.CPU))
	r.add("agent_cpu", "agent CPU per fire", "µs", "", per(b.agent.CPU-a.agent.CPU))
	r.add("pg_cpu", "PostgreSQL CPU per fire", "µs", "", per(b.pg-a.pg))
	env.statusf(tag, "%d/%d ran; %s fires/s, last start %s after T; fires recorded %s→%s after T; all done after %s",
		ran, n, formatValue(r.find("fire_rate").Values[rep], "/s"), formatValue(j.lastStart, "ms"),
		formatValue(ms(firstFired.Sub(at)), "ms"), formatValue(ms(lastFired.Sub(at)), "ms"), formatValue(done, "ms"))
	return cr, activity, nil
}

// errOverrun means that creating a repetition's jobs at the pace seen so far would end after
// T (or within a second of it): the jobs created after T would not fire at T.
type errOverrun struct{ rate float64 }

func (e *errOverrun) Error() string {
	return fmt.Sprintf("creating the jobs at %.0f/s would end after their due time", e.rate)
}

// checkPace returns an errOverrun when, done of n created since t0, creating the rest at the
// same pace would end later than a second before at. It judges after 5 s of creating, and
// after 1% of the jobs, so that the callers' start-up does not count as the pace.
func checkPace(t0, at time.Time, done, n int) error {
	elapsed := time.Since(t0)
	if elapsed < 5*time.Second || done < n/100 || done == n {
		return nil
	}
	rate := float64(done) / elapsed.Seconds()
	if t0.Add(time.Duration(float64(n) / rate * float64(time.Second))).After(at.Add(-time.Second)) {
		return &errOverrun{rate: rate}
	}
	return nil
}

// w5Usage is the CPU used up to a moment by tockd, the agent and PostgreSQL.
type w5Usage struct {
	tockd, agent procUsage
	pg           time.Duration
}

func tockUsage(c *tockCluster) w5Usage {
	u := w5Usage{pg: treeCPU(c.env.PG.proc.pid())}
	u.tockd, u.agent = c.usage()
	return u
}

// waitCount polls count every 100 ms until it reaches want or deadline passes, saying every
// second how far it is; alive, when not nil, fails the wait when a process died.
func waitCount(ctx context.Context, env *Env, tag string, want int, deadline time.Time, alive func() error,
	count func(context.Context) (int, error)) (int, error) {
	lastStatus := time.Time{}
	for {
		n, err := count(ctx)
		if err != nil {
			return n, err
		}
		now := time.Now()
		if n >= want || now.After(deadline) {
			env.statusf(tag, "runs %d/%d", n, want)
			return n, nil
		}
		if now.Sub(lastStatus) >= time.Second {
			env.statusf(tag, "waiting for runs %d/%d", n, want)
			lastStatus = now
		}
		if alive != nil {
			if err := alive(); err != nil {
				return n, err
			}
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return n, err
		}
	}
}

// waitUnfinished polls the case's database every 100 ms until no W5 execution is pending,
// assigned or running, and returns the time from since until then (NaN at deadline).
func waitUnfinished(ctx context.Context, env *Env, tag string, db *pgx.Conn, since, deadline time.Time) (float64, error) {
	lastStatus := time.Time{}
	for {
		var live int
		err := db.QueryRow(ctx, `SELECT count(*) FROM executions WHERE state IN ('pending', 'assigned', 'running')
			AND job LIKE $1`, w5Prefix+"%").Scan(&live)
		if err != nil {
			return 0, fmt.Errorf("count unfinished executions: %w", err)
		}
		now := time.Now()
		if live == 0 {
			return ms(now.Sub(since)), nil
		}
		if now.After(deadline) {
			return math.NaN(), nil
		}
		if now.Sub(lastStatus) >= time.Second {
			env.statusf(tag, "waiting for results to be committed: %d executions unfinished", live)
			lastStatus = now
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// burstSampler samples pg_stat_activity of one database every 250 ms: how the backends
// spend their time (active and on what they wait, idle in transaction, idle).
type burstSampler struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // protects samples and err
	samples map[string]int
	err     error
}

func startBurstSampler(ctx context.Context, env *Env, db string) *burstSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &burstSampler{cancel: cancel, done: make(chan struct{}), samples: make(map[string]int)}
	go func() {
		defer close(s.done)
		conn, err := pgx.Connect(ctx, env.PG.url("postgres"))
		if err != nil {
			s.setErr(err)
			return
		}
		defer conn.Close(context.WithoutCancel(ctx))
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			rows, err := conn.Query(ctx, `SELECT state, COALESCE(wait_event_type || ':' || wait_event, '')
				FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`, db)
			if err == nil {
				var states []string
				states, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
					var state, wait string
					if err := r.Scan(&state, &wait); err != nil {
						return "", err
					}
					if wait != "" && state != "idle" {
						state += " (" + wait + ")"
					}
					return state, nil
				})
				s.mu.Lock()
				for _, st := range states {
					s.samples[st]++
				}
				s.mu.Unlock()
			}
			if err != nil && ctx.Err() == nil {
				s.setErr(err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *burstSampler) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// stop ends the sampling and describes it: the shares of the commonest states.
func (s *burstSampler) stop() string {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "sampling failed: " + s.err.Error()
	}
	total := 0
	var keys []string
	for k, v := range s.samples {
		total += v
		keys = append(keys, k)
	}
	if total == 0 {
		return "no samples"
	}
	sort.Slice(keys, func(i, j int) bool { return s.samples[keys[i]] > s.samples[keys[j]] })
	var parts []string
	for i, k := range keys {
		if i == 5 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*float64(s.samples[k])/float64(total)))
	}
	return strings.Join(parts, ", ")
}

// runAsynq measures the burst on the Asynq peer: per repetition a fresh Redis and Asynq
// server, n tasks enqueued (16 callers) with ProcessAt(T), then the handler starts from T.
func (w w5) runAsynq(ctx context.Context, env *Env, name string, n int) (r Result, err error) {
	r = Result{Workload: "W5", Case: name, Title: fmt.Sprintf("Burst: %d one-off tasks due at the same instant (Asynq peer)", n)}
	if _, err := lookRedis(); err != nil {
		return r, err
	}
	rate := 2500.0 // tasks enqueued per second, a guess for the first repetition
	if env.Quick {
		rate = 5000
	}
	var overran []string
	versions := ""
	for rep := range w5Reps(env) {
		var cr w5Created
		var v string
		var err error
		for attempt := 1; ; attempt++ {
			cr, v, err = w.asynqRep(ctx, env, &r, name, rep, n, rate)
			var over *errOverrun
			if !errors.As(err, &over) || attempt == 4 {
				break
			}
			rate = over.rate / 1.6
			env.statusf(w5Tag(env, name, rep), "enqueueing at %.0f tasks/s would end after T: starting again with T further ahead", over.rate)
		}
		if err != nil {
			return r, err
		}
		versions = v
		if cr.over > 0 {
			overran = append(overran, fmt.Sprintf("repetition %d: the last task was enqueued %s after T", rep+1,
				cr.over.Round(time.Millisecond)))
		}
		rate = cr.rate / 1.3
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("Peer: %s. Per repetition a fresh redis-server (appendonly yes, appendfsync everysec) and an "+
			"asynq.Server in this process (concurrency %d, TaskCheckInterval %s, DelayedTaskCheckInterval %s: the "+
			"forwarder that moves due scheduled tasks to the queue runs this often; Asynq's default is 5 s); %d tasks "+
			"enqueued with asynq.ProcessAt(T) by asynq.Client (%d callers in parallel).", versions, min(max(n, 100), 100000),
			asynqTaskCheck, asynqDelayedCheck, n, w5Callers),
		"Fires/s and start lateness as for Tock. All done: from T until the queue held no pending, active or scheduled "+
			"task (Inspector.GetQueueInfo every 100 ms): every completion written to Redis.")
	if len(overran) > 0 {
		r.Notes = append(r.Notes, "Enqueueing overran T ("+strings.Join(overran, "; ")+"): the tasks enqueued after "+
			"T were due at once, and those figures understate the burst.")
	}
	if env.Quick {
		r.Notes = append(r.Notes, "Quick run: one repetition.")
	}
	r.Summary = w5Summary(&r, "Asynq: ")
	return r, nil
}

func (w w5) asynqRep(ctx context.Context, env *Env, r *Result, name string, rep, n int, rate float64) (cr w5Created, versions string, err error) {
	tag := w5Tag(env, name, rep)
	p, err := env.startAsynq(ctx, "w5_asynq_"+fmt.Sprint(rep+1), min(max(n, 100), 100000), 0)
	if err != nil {
		return cr, "", err
	}
	defer func() {
		if cerr := p.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	client := asynq.NewClient(p.opt)
	defer client.Close()

	at := nextInstant(time.Now().Add(w5Lead(n, rate, env.Quick)), time.Second)
	env.statusf(tag, "enqueueing %d tasks due at %s", n, at.UTC().Format("15:04:05"))
	t0 := time.Now()
	var enqueued atomic.Int64
	err = forEach(ctx, env, tag, "enqueueing tasks", n, w5Callers, func(ctx context.Context, i int) error {
		job := fmt.Sprintf("%s%06d", w5Prefix, i)
		info, err := client.EnqueueContext(ctx, asynq.NewTask(noopHandler, []byte(job)), asynq.ProcessAt(at),
			asynq.Queue(asynqQueue), asynq.Timeout(30*time.Second))
		if err != nil {
			return fmt.Errorf("enqueue %s: %w", job, err)
		}
		p.book.setNominal(info.ID, at)
		return checkPace(t0, at, int(enqueued.Add(1)), n)
	})
	if err != nil {
		return cr, "", err
	}
	cr.rate = float64(n) / time.Since(t0).Seconds()
	cr.over = max(time.Since(at), 0)
	r.add("create_rate", "tasks enqueued/s", "/s", "", cr.rate)

	if err := waitInstant(ctx, env, tag, at.Add(-time.Second), at); err != nil {
		return cr, "", err
	}
	a := p.usage()
	if _, err := waitCount(ctx, env, tag, n, at.Add(w5Wait), nil, func(context.Context) (int, error) {
		return p.book.count(at, at), nil
	}); err != nil {
		return cr, "", err
	}
	done, err := p.waitDrained(ctx, tag, at, at.Add(w5Wait))
	if err != nil {
		return cr, "", err
	}
	b := p.usage()
	j := judgeRuns(p.book.runsOf(at, at), n)
	addBurst(r, j, n)
	r.add("all_done", "all done (completions in Redis) after T", "ms", "", done)
	p.addUsage(r, a, b, j.ran == n)
	env.statusf(tag, "%d/%d ran; %s fires/s, last start %s after T; all done after %s", j.ran, n,
		formatValue(r.find("fire_rate").Values[rep], "/s"), formatValue(j.lastStart, "ms"), formatValue(done, "ms"))
	return cr, p.versions(), nil
}
