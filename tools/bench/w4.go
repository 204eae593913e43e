package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// w4 measures cron precision: many jobs with the same cron schedule fire at the same
// instant, and each fire's lateness is when its handler started minus its nominal time.
// Every fire is checked through the API (GET /v1/jobs/{name}/fires and the executions) and
// against the handler's own record: none may be missed or run twice.
type w4 struct{}

func (w4) ID() string   { return "W4" }
func (w4) Name() string { return "cron precision" }

// w4Case is one cron precision case.
type w4Case struct {
	// Name is the case's short name, Title its description.
	Name, Title string
	// Jobs is how many jobs, all with schedule Cron, which fires every Period.
	Jobs   int
	Cron   string
	Period time.Duration
	// Lead is how far ahead of the first measured fire instant the jobs must all exist.
	Lead time.Duration
	// Window is how many consecutive fire instants one repetition measures.
	Window int
}

// w4Cases returns the cases of the quick or the full set.
func w4Cases(quick bool) []w4Case {
	if quick {
		return []w4Case{{
			Name: "1k-sec", Title: "1,000 jobs firing every second (quick: one instant)",
			Jobs: 1000, Cron: "* * * * * *", Period: time.Second, Lead: 2 * time.Second, Window: 1,
		}}
	}
	return []w4Case{
		{
			Name: "10k-min", Title: "10,000 jobs firing every minute at second 0",
			Jobs: 10000, Cron: "0 * * * * *", Period: time.Minute, Lead: 15 * time.Second, Window: 1,
		},
		{
			Name: "1k-sec", Title: "1,000 jobs firing every second (20 s per repetition)",
			Jobs: 1000, Cron: "* * * * * *", Period: time.Second, Lead: 5 * time.Second, Window: 20,
		},
		{
			Name: "100k-min", Title: "100,000 jobs firing every minute at second 0",
			Jobs: 100000, Cron: "0 * * * * *", Period: time.Minute, Lead: 15 * time.Second, Window: 1,
		},
	}
}

const (
	// w4Wait is how long after a repetition's last fire instant its handlers may still start
	// and its results still be committed.
	w4Wait = 60 * time.Second
	// w4Settle is how long to wait after the last repetition before reading the server's
	// counters, so that idle backends have reported theirs.
	w4Settle = 11 * time.Second
	// w4Prefix starts the name of every W4 job.
	w4Prefix = "w4-"
)

func (w w4) Run(ctx context.Context, env *Env) ([]Result, error) {
	cases := w4Cases(env.Quick)
	var names []string
	for _, c := range cases {
		names = append(names, c.Name)
	}
	names = append(names, w4AsynqNames(env.Quick)...) // the cron scheduler peer (w4asynq.go)
	chosen, err := env.selectCases(names)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, c := range cases {
		if !slices.Contains(chosen, c.Name) {
			continue
		}
		r, err := w.runCase(ctx, env, c)
		if err != nil {
			return out, fmt.Errorf("case %s: %w", c.Name, err)
		}
		out = append(out, r)
	}
	peer, err := w.runAsynq(ctx, env, chosen, out)
	return append(out, peer...), err
}

// fireKey is one intended fire: a job at a nominal time.
type fireKey struct {
	job     string
	nominal int64 // Unix nanoseconds
}

// w4Snapshot is the resources used up to a moment, to divide by the fires in between.
type w4Snapshot struct {
	at           time.Time
	tockd, agent procUsage
	pgCPU        time.Duration
	db           dbStats
	dbErr        error
}

// w4Run is a case in progress.
type w4Run struct {
	env   *Env
	wc    w4Case
	c     *tockCluster
	db    *pgx.Conn // the case's database, for counting unfinished executions
	r     *Result
	names []string
}

func (w w4) runCase(ctx context.Context, env *Env, wc w4Case) (Result, error) {
	r := Result{Workload: "W4", Case: wc.Name, Title: "Cron precision: " + wc.Title}
	dbName := "w4_" + strings.ReplaceAll(wc.Name, "-", "_")
	c, err := env.startTock(ctx, clusterConfig{Name: dbName, Capacity: min(max(wc.Jobs, 100), 100000)})
	if err != nil {
		return r, err
	}
	defer func() { _ = c.close(context.WithoutCancel(ctx)) }()
	db, err := pgx.Connect(ctx, env.PG.url(c.db))
	if err != nil {
		return r, err
	}
	defer db.Close(context.WithoutCancel(ctx))
	run := &w4Run{env: env, wc: wc, c: c, db: db, r: &r}

	tag := "W4 " + wc.Name
	jobs := make([]*tockv1.Job, wc.Jobs)
	for i := range jobs {
		run.names = append(run.names, fmt.Sprintf("%s%06d", w4Prefix, i))
		jobs[i] = noopJob(run.names[i], wc.Cron)
	}
	createStart := time.Now()
	if err := c.createJobs(ctx, tag, jobs, 16); err != nil {
		return r, err
	}
	createRate := float64(wc.Jobs) / time.Since(createStart).Seconds()

	first := nextInstant(time.Now().Add(wc.Lead), wc.Period)
	var instants [][]time.Time // per repetition
	for rep := range env.Reps {
		var win []time.Time
		for k := range wc.Window {
			win = append(win, first.Add(time.Duration(rep*wc.Window+k)*wc.Period))
		}
		instants = append(instants, win)
	}

	snaps := make([]w4Snapshot, 0, env.Reps+1)
	complete := make([]bool, 0, env.Reps)
	for rep, win := range instants {
		repTag := env.repTag("W4", wc.Name, rep)
		// The resources of a repetition are counted from shortly before its first instant
		// (the scheduler claims fires up to a second ahead) to shortly before the next's.
		if err := run.waitUntil(ctx, repTag, win[0].Add(-2*time.Second), win[0]); err != nil {
			return r, err
		}
		snaps = append(snaps, run.snapshot(ctx))
		done, err := run.measure(ctx, repTag, win)
		if err != nil {
			return r, err
		}
		complete = append(complete, done)
	}
	settle := w4Settle
	if env.Quick {
		settle = time.Second // the per-fire figures of a quick run are indicative anyway
	}
	if err := sleepCtx(ctx, settle); err != nil {
		return r, err
	}
	snaps = append(snaps, run.snapshot(ctx))
	if err := run.addUsage(ctx, snaps, complete); err != nil {
		return r, err
	}
	if err := run.checkAPI(ctx, instants); err != nil {
		return r, err
	}

	last := snaps[len(snaps)-1]
	retries := c.metricValue(ctx, "tock_store_tx_retries_total")
	metricsFile := fmt.Sprintf("W4-%s-tockd-metrics.txt", wc.Name)
	if err := c.saveMetrics(ctx, metricsFile); err != nil {
		env.statusf(tag, "could not save tockd metrics: %v", err)
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("%d jobs `%s` (UTC) created through the API (gRPC CreateJob, 16 callers in parallel) at %.0f jobs/s; "+
			"the first measured instant was the first at least %s after the last job existed; repetitions are "+
			"consecutive fire instants%s on the same cluster.", wc.Jobs, wc.Cron, createRate, wc.Lead, windowNote(wc)),
		"Lateness: when the bench handler started (time.Now() at its top, in the handler service's process) minus the "+
			"fire's nominal time. Start rate: the fires of an instant ÷ the time from the instant to the last of their starts.",
		"All committed: from the (last) instant until no execution of the repetition was pending, assigned or running "+
			"in the database (polled every 100 ms): every result recorded.",
		"Not run / run twice: from the handler's records within 60 s of the instant. Missed fires: (job, instant) pairs "+
			"without a DISPATCHED fire in GET /v1/jobs/{name}/fires; duplicates: a (job, instant) recorded twice as a fire, "+
			"or with more than one first-attempt execution in GET /v1/executions. Fire recorded − nominal: the fire's "+
			"fireTime minus its nominal time (negative: claimed ahead).",
		"Per fire: CPU time of tockd, the agent and PostgreSQL (postmaster and backends), and the database's commits, rows "+
			"written, WAL bytes and WAL syncs, from shortly before each repetition's first instant to shortly before the "+
			"next one's, divided by the handler runs in between; left out (–) for a repetition whose fires did not all run "+
			"and commit within 60 s, since its interval then holds the work of others.",
		fmt.Sprintf("At the end: tockd peak RSS %.0f MB, agent peak RSS %.0f MB, %.0f store transaction retries "+
			"(tock_store_tx_retries_total); tockd's /metrics are in the output folder as %s.",
			float64(last.tockd.HWM)/(1<<20), float64(last.agent.HWM)/(1<<20), retries, metricsFile))
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
	r.Summary = fmt.Sprintf("lateness p50 %s, p99 %s, max %s (targets p99 ≤ 5 ms, max ≤ 50 ms); start rate %s; all committed after %s; "+
		"in all repetitions: missed %s, duplicate %s, not run %s, run twice %s, retried %s", med("lateness_p50"), med("lateness_p99"),
		med("lateness_max"), med("start_rate"), med("all_committed"), total("missed"), total("duplicate"), total("not_run"),
		total("run_twice"), total("retried"))
	return r, nil
}

func windowNote(wc w4Case) string {
	if wc.Window > 1 {
		return fmt.Sprintf(" (%d instants per repetition)", wc.Window)
	}
	return ""
}

// nextInstant returns the first multiple of period (counted from the Unix epoch) at or
// after t: the fire instants of the cron schedules above.
func nextInstant(t time.Time, period time.Duration) time.Time {
	n := t.Truncate(period)
	if n.Before(t) {
		n = n.Add(period)
	}
	return n
}

// waitUntil sleeps until t, saying every 5 s how long remains until the fire instant.
func (run *w4Run) waitUntil(ctx context.Context, tag string, t, instant time.Time) error {
	for {
		left := time.Until(t)
		if left <= 0 {
			return nil
		}
		run.env.statusf(tag, "waiting for the fire instant %s (in %s)", instant.UTC().Format("15:04:05"),
			time.Until(instant).Round(time.Second))
		if err := sleepCtx(ctx, min(left, 5*time.Second)); err != nil {
			return err
		}
		if err := run.c.alive(); err != nil {
			return err
		}
	}
}

// snapshot reads the resources used so far.
func (run *w4Run) snapshot(ctx context.Context) w4Snapshot {
	s := w4Snapshot{at: time.Now(), pgCPU: treeCPU(run.env.PG.proc.pid())}
	s.tockd, s.agent = run.c.usage()
	s.db, s.dbErr = run.env.PG.stats(ctx, run.c.db)
	return s
}

// measure waits for the fires of one repetition's instants to run and their results to be
// committed, and adds what it saw to the result. It reports whether all of them ran and were
// committed in time.
func (run *w4Run) measure(ctx context.Context, tag string, win []time.Time) (bool, error) {
	from, to := win[0], win[len(win)-1]
	want := run.wc.Jobs * len(win)
	filter := recordFilter{Prefix: w4Prefix, From: from, To: to}
	deadline := to.Add(w4Wait)

	// Every handler has run.
	lastStatus := time.Time{}
	for {
		n, err := run.c.records.count(ctx, filter)
		if err != nil {
			return false, err
		}
		now := time.Now()
		if n >= want || now.After(deadline) {
			run.env.statusf(tag, "fires %d/%d", n, want)
			break
		}
		if now.Sub(lastStatus) >= time.Second {
			run.env.statusf(tag, "waiting for fires %d/%d", n, want)
			lastStatus = now
		}
		if err := run.c.alive(); err != nil {
			return false, err
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return false, err
		}
	}
	// Every result is committed.
	committed := math.NaN()
	live := -1
	for {
		err := run.db.QueryRow(ctx, `SELECT count(*) FROM executions
			WHERE state IN ('pending', 'assigned', 'running') AND nominal_time BETWEEN $1 AND $2 AND job LIKE $3`,
			from, to, w4Prefix+"%").Scan(&live)
		if err != nil {
			run.env.statusf(tag, "cannot count unfinished executions in the database: %v", err)
			break
		}
		now := time.Now()
		if live == 0 {
			committed = ms(now.Sub(to))
			break
		}
		if now.After(deadline) {
			break
		}
		if now.Sub(lastStatus) >= time.Second {
			run.env.statusf(tag, "waiting for results to be committed: %d executions unfinished", live)
			lastStatus = now
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return false, err
		}
	}

	recs, err := run.c.records.records(ctx, filter)
	if err != nil {
		return false, err
	}
	// The first run of each (job, nominal time) counts; later runs are duplicates.
	firstRun := make(map[fireKey]handlerRecord, want)
	dup := 0
	for _, rec := range recs {
		k := fireKey{rec.Job, rec.Nominal}
		if prev, ok := firstRun[k]; ok {
			dup++
			if rec.Start < prev.Start {
				firstRun[k] = rec
			}
			continue
		}
		firstRun[k] = rec
	}
	late := make([]float64, 0, len(firstRun))
	early := 0
	spread := make(map[int64]float64, len(win)) // per instant: its latest start, ms after it
	count := make(map[int64]int, len(win))
	for k, rec := range firstRun {
		l := ms(time.Duration(rec.Start - k.nominal))
		late = append(late, l)
		if l < 0 {
			early++
		}
		spread[k.nominal] = max(spread[k.nominal], l)
		count[k.nominal]++
	}
	var rates []float64
	for nominal, s := range spread {
		if s > 0 {
			rates = append(rates, float64(count[nominal])/(s/1000))
		}
	}
	rate, _, _ := medianMinMax(rates)

	r := run.r
	r.addDist("lateness", "fire lateness", "ms", [3]string{"", "≤ 5 ms", "≤ 50 ms"}, late)
	r.add("start_rate", "start rate", "/s", "", rate)
	r.add("all_committed", "all committed after", "ms", "", committed)
	r.add("unfinished", "unfinished after 60 s", "count", "0", float64(max(live, 0)))
	r.add("not_run", "not run (handler)", "count", "0", float64(want-len(firstRun)))
	r.add("run_twice", "run twice (handler)", "count", "0", float64(dup))
	r.add("early", "started before nominal time", "count", "0", float64(early))
	s := summarize(late)
	run.env.statusf(tag, "%d/%d fires ran: lateness p50 %s p99 %s max %s; all committed after %s; %d not run, %d twice",
		len(firstRun), want, formatValue(s.P50, "ms"), formatValue(s.P99, "ms"), formatValue(s.Max, "ms"),
		formatValue(committed, "ms"), want-len(firstRun), dup)
	return len(firstRun) == want && live == 0, run.c.alive()
}

// addUsage adds the resources used per handler run between consecutive snapshots. A
// repetition whose fires did not all run and commit in time gets none (NaN): its interval
// holds work of other repetitions.
func (run *w4Run) addUsage(ctx context.Context, snaps []w4Snapshot, complete []bool) error {
	r := run.r
	for i := range len(snaps) - 1 {
		a, b := snaps[i], snaps[i+1]
		runs, err := run.c.records.count(ctx, recordFilter{Prefix: w4Prefix, StartFrom: a.at, StartTo: b.at})
		if err != nil {
			return err
		}
		valid := complete[i] && runs > 0
		dbValid := valid && a.dbErr == nil && b.dbErr == nil
		per := func(ok bool, v float64) float64 {
			if !ok {
				return math.NaN()
			}
			return v / float64(runs)
		}
		us := func(d time.Duration) float64 { return per(valid, float64(d)/float64(time.Microsecond)) }
		r.add("tockd_cpu", "tockd CPU per fire", "µs", "", us(b.tockd.CPU-a.tockd.CPU))
		r.add("agent_cpu", "agent CPU per fire", "µs", "", us(b.agent.CPU-a.agent.CPU))
		r.add("pg_cpu", "PostgreSQL CPU per fire", "µs", "", us(b.pgCPU-a.pgCPU))
		r.add("commits", "commits per fire", "", "", per(dbValid, b.db.Commits-a.db.Commits))
		r.add("rows", "rows written per fire", "", "", per(dbValid, b.db.Rows-a.db.Rows))
		r.add("wal_bytes", "WAL per fire", "B", "", per(dbValid, b.db.WALBytes-a.db.WALBytes))
		r.add("wal_syncs", "WAL syncs per fire", "", "", per(dbValid, b.db.WALSyncs-a.db.WALSyncs))
	}
	return nil
}

// repValue is a value measured in a repetition.
type repValue struct {
	rep int
	v   float64
}

// checkAPI checks every intended fire through the API: each (job, instant) must have exactly
// one DISPATCHED fire and exactly one first-attempt execution. It adds the counts per
// repetition to the result, and how far ahead of their instants fires were recorded.
func (run *w4Run) checkAPI(ctx context.Context, instants [][]time.Time) error {
	env, c, r, names := run.env, run.c, run.r, run.names
	tag := "W4 " + run.wc.Name + " check"
	first := instants[0][0]
	repOf := make(map[int64]int)
	for rep, win := range instants {
		for _, t := range win {
			repOf[t.UnixNano()] = rep
		}
	}
	reps := len(instants)
	missed := make([]int, reps)   // no DISPATCHED fire
	dupFires := make([]int, reps) // the same nominal time twice
	recorded := make([][]float64, reps)

	type jobFires struct {
		seen  map[int64]int
		bad   []int // repetitions of fires that did not dispatch
		leads []repValue
	}
	results := make([]jobFires, len(names))
	pageSize := int32(min(1000, len(repOf)+10))
	err := forEach(ctx, env, tag, "listing fires", len(names), 16, func(ctx context.Context, i int) error {
		fires, err := c.listFires(ctx, names[i], first, pageSize)
		if err != nil {
			return err
		}
		jf := jobFires{seen: make(map[int64]int)}
		for _, f := range fires {
			nominal := f.GetNominalTime().AsTime()
			rep, ok := repOf[nominal.UnixNano()]
			if !ok {
				continue
			}
			jf.seen[nominal.UnixNano()]++
			if f.GetOutcome() != tockv1.FireOutcome_FIRE_OUTCOME_DISPATCHED {
				jf.bad = append(jf.bad, rep)
				continue
			}
			jf.leads = append(jf.leads, repValue{rep, ms(f.GetFireTime().AsTime().Sub(nominal))})
		}
		results[i] = jf
		return nil
	})
	if err != nil {
		return err
	}
	for _, jf := range results {
		for nominal, rep := range repOf {
			switch n := jf.seen[nominal]; {
			case n == 0:
				missed[rep]++
			case n > 1:
				dupFires[rep] += n - 1
			}
		}
		for _, rep := range jf.bad {
			missed[rep]++
		}
		for _, l := range jf.leads {
			recorded[l.rep] = append(recorded[l.rep], l.v)
		}
	}

	env.statusf(tag, "listing executions")
	execs, err := c.listExecutions(ctx, first.Add(-time.Minute))
	if err != nil {
		return err
	}
	firstAttempts := make(map[fireKey]int)
	retries := make([]int, reps)
	for _, e := range execs {
		if e.GetTrigger() == tockv1.TriggerKind_TRIGGER_KIND_MANUAL {
			continue
		}
		nominal := e.GetNominalTime().AsTime().UnixNano()
		rep, ok := repOf[nominal]
		if !ok {
			continue
		}
		if e.GetAttempt() > 1 {
			retries[rep]++
			continue
		}
		firstAttempts[fireKey{e.GetJob(), nominal}]++
	}
	dupExecs := make([]int, reps)
	noExec := make([]int, reps)
	for _, name := range names {
		for nominal, rep := range repOf {
			switch n := firstAttempts[fireKey{name, nominal}]; {
			case n == 0:
				noExec[rep]++
			case n > 1:
				dupExecs[rep] += n - 1
			}
		}
	}
	for rep := range reps {
		r.add("missed", "missed fires (API)", "count", "0", float64(missed[rep]))
		r.add("duplicate", "duplicate fires or executions (API)", "count", "0", float64(dupFires[rep]+dupExecs[rep]))
		r.add("no_execution", "fires without an execution (API)", "count", "0", float64(noExec[rep]))
		r.add("retried", "retried executions (API)", "count", "0", float64(retries[rep]))
		rs := summarize(recorded[rep])
		r.add("recorded_min", "fire recorded − nominal, earliest", "ms", "", rs.Min)
		r.add("recorded_max", "fire recorded − nominal, latest", "ms", "", rs.Max)
	}
	env.statusf(tag, "missed %v, duplicate fires %v, duplicate executions %v, without execution %v, retried %v (per repetition)",
		missed, dupFires, dupExecs, noExec, retries)
	return nil
}
