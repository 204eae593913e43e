package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// W4's cron scheduler peer: Asynq's Scheduler registers one entry per job with the schedule
// of the Tock case of the same shape, and Asynq's server runs a no-op handler that notes
// when it started. Asynq's cron parser has no seconds field (five fields or a descriptor):
// "* * * * *" fires at second 0 of every minute, as Tock's "0 * * * * *"; "@every 1s" fires
// at every whole second (robfig/cron rounds @every schedules to the second), as
// "* * * * * *". (A longer @every counts from the scheduler's start, not from the epoch, so
// Tock's quick "*/10 * * * * *" case has no exact Asynq twin; the quick Asynq case fires every
// second.)

// w4AsynqCase is a cron precision case of the Asynq peer.
type w4AsynqCase struct {
	// Name is the case's short name, Title its description, Tock the Tock case of the same
	// shape (for the ratios).
	Name, Title, Tock string
	// Jobs is how many scheduler entries, all with Asynq's cron spec Spec, which fires every
	// Period.
	Jobs   int
	Spec   string
	Period time.Duration
	// Window is how many consecutive fire instants one repetition measures.
	Window int
}

// w4AsynqCases returns the Asynq cases of the quick or the full set.
func w4AsynqCases(quick bool) []w4AsynqCase {
	if quick {
		return []w4AsynqCase{{Name: "asynq-1k-sec", Title: "1,000 entries firing every second (quick)",
			Jobs: 1000, Spec: "@every 1s", Period: time.Second, Window: 1}}
	}
	return []w4AsynqCase{
		{Name: "asynq-10k-min", Tock: "10k-min", Title: "10,000 entries firing every minute at second 0",
			Jobs: 10000, Spec: "* * * * *", Period: time.Minute, Window: 1},
		{Name: "asynq-1k-sec", Tock: "1k-sec", Title: "1,000 entries firing every second (20 s per repetition)",
			Jobs: 1000, Spec: "@every 1s", Period: time.Second, Window: 20},
		{Name: "asynq-100k-min", Tock: "100k-min", Title: "100,000 entries firing every minute at second 0",
			Jobs: 100000, Spec: "* * * * *", Period: time.Minute, Window: 1},
	}
}

// w4AsynqNames returns the names of the Asynq cases.
func w4AsynqNames(quick bool) []string {
	var names []string
	for _, c := range w4AsynqCases(quick) {
		names = append(names, c.Name)
	}
	return names
}

// runAsynq runs the chosen Asynq cases, after Tock's (tock), whose results give the ratios.
// Without redis-server it says so and skips them.
func (w w4) runAsynq(ctx context.Context, env *Env, chosen []string, tock []Result) ([]Result, error) {
	var out []Result
	for _, c := range w4AsynqCases(env.Quick) {
		if !slices.Contains(chosen, c.Name) {
			continue
		}
		r, err := w.runAsynqCase(ctx, env, c)
		if errors.Is(err, errNoRedis) {
			env.statusf("W4 "+c.Name, "skipped: %v", err)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("case %s: %w", c.Name, err)
		}
		for _, t := range tock {
			if t.Case == c.Tock {
				r.Notes = append(r.Notes, ratioNote("Tock "+t.Case+" ÷ Asynq", &t, &r,
					"lateness_p50", "lateness_p99", "lateness_max", "start_rate"))
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// ratioNote says how a's medians compare with b's for keys.
func ratioNote(what string, a, b *Result, keys ...string) string {
	var parts []string
	for _, k := range keys {
		m := a.find(k)
		if m == nil || b.find(k) == nil {
			continue
		}
		x, y := a.medianOf(k), b.medianOf(k)
		parts = append(parts, fmt.Sprintf("%s %s ÷ %s = %s", m.Label, formatValue(x, m.Unit), formatValue(y, m.Unit),
			formatValue(x/y, "x")))
	}
	return what + " (medians): " + strings.Join(parts, "; ") + "."
}

func (w w4) runAsynqCase(ctx context.Context, env *Env, wc w4AsynqCase) (r Result, err error) {
	r = Result{Workload: "W4", Case: wc.Name, Title: "Cron precision, Asynq peer: " + wc.Title}
	tag := "W4 " + wc.Name
	if _, err := lookRedis(); err != nil {
		return r, err
	}
	p, err := env.startAsynq(ctx, "w4_"+strings.ReplaceAll(wc.Name, "-", "_"), min(max(wc.Jobs, 100), 100000), wc.Period)
	if err != nil {
		return r, err
	}
	defer func() {
		if cerr := p.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	sched := asynq.NewScheduler(p.opt, &asynq.SchedulerOpts{
		Location: time.UTC,
		Logger:   p.quiet,
		LogLevel: asynq.WarnLevel,
		PreEnqueueFunc: func(t *asynq.Task, _ []asynq.Option) {
			p.book.preEnqueue(string(t.Payload()), time.Now())
		},
		PostEnqueueFunc: p.book.postEnqueue,
	})
	names := make([]string, wc.Jobs)
	regStart := time.Now()
	for i := range names {
		names[i] = fmt.Sprintf("%s%06d", w4Prefix, i)
		if _, err := sched.Register(wc.Spec, asynq.NewTask(noopHandler, []byte(names[i])),
			asynq.Queue(asynqQueue), asynq.Timeout(30*time.Second)); err != nil {
			return r, fmt.Errorf("register %s %q: %w", names[i], wc.Spec, err)
		}
	}
	regRate := float64(wc.Jobs) / time.Since(regStart).Seconds()
	env.statusf(tag, "%d entries registered; starting the scheduler", wc.Jobs)
	started := time.Now()
	if err := sched.Start(); err != nil {
		return r, fmt.Errorf("start the Asynq scheduler: %w", err)
	}
	defer sched.Shutdown()

	first := nextInstant(started.Add(2*time.Second), wc.Period)
	var usages []asynqUsage
	var complete []bool
	for rep := range env.Reps {
		repTag := env.repTag("W4", wc.Name, rep)
		var win []time.Time
		for k := range wc.Window {
			win = append(win, first.Add(time.Duration(rep*wc.Window+k)*wc.Period))
		}
		if err := waitInstant(ctx, env, repTag, win[0].Add(-time.Second), win[0]); err != nil {
			return r, err
		}
		usages = append(usages, p.usage())
		done, err := w.measureAsynq(ctx, env, p, wc, &r, repTag, win)
		if err != nil {
			return r, err
		}
		complete = append(complete, done)
	}
	usages = append(usages, p.usage())
	for i := range len(usages) - 1 {
		p.addUsage(&r, usages[i], usages[i+1], complete[i])
	}

	r.Notes = append(r.Notes,
		fmt.Sprintf("Peer: %s, in this process: %d entries `%s` (UTC) registered with asynq.Scheduler (%.0f entries/s, "+
			"before its start), an asynq.Server with concurrency %d whose handler `noop` notes the instant it started. "+
			"Redis: its own redis-server on loopback, appendonly yes, appendfsync everysec (an acknowledged write reaches "+
			"the disk within a second, not before the acknowledgement as with PostgreSQL's synchronous_commit=on).",
			p.versions(), wc.Jobs, wc.Spec, regRate, min(max(wc.Jobs, 100), 100000)),
		fmt.Sprintf("Asynq's cron has no seconds field: `%s` fires at the instants of Tock's `%s`. Asynq settings "+
			"chosen for precision: TaskCheckInterval %s (default 1 s, the processor's sleep when the queue is empty), "+
			"DelayedTaskCheckInterval %s (default 5 s); everything else Asynq's default.",
			wc.Spec, tockSpec(wc.Spec), asynqTaskCheck, asynqDelayedCheck),
		"Lateness: handler start minus the nominal instant; the nominal instant of a run is the instant the scheduler "+
			"began enqueueing its task (PreEnqueueFunc) rounded down to the schedule's period. Missed: (entry, instant) "+
			"pairs without a run within 60 s; duplicate: a pair run more than once. Queue drained: from the (last) "+
			"instant until the queue held no pending, active or scheduled task (Inspector.GetQueueInfo, every 100 ms; "+
			"– when not drained before the next instant). Enqueue − nominal: when the scheduler began enqueueing.")
	med := func(k string) string {
		m := r.find(k)
		if m == nil {
			return "–"
		}
		return formatValue(r.medianOf(k), m.Unit)
	}
	r.Summary = fmt.Sprintf("%s: lateness p50 %s, p99 %s, max %s; start rate %s; queue drained after %s; "+
		"in all repetitions: missed %s, duplicate %s, enqueue errors %d", p.versions(), med("lateness_p50"),
		med("lateness_p99"), med("lateness_max"), med("start_rate"), med("drained"),
		formatValue(r.totalOf("missed"), "count"), formatValue(r.totalOf("duplicate"), "count"), p.book.enqueueErrors())
	return r, nil
}

// tockSpec returns the Tock cron expression that fires at the instants of Asynq's spec.
func tockSpec(spec string) string {
	if spec == "@every 1s" {
		return "* * * * * *"
	}
	return "0 " + spec
}

// waitInstant sleeps until t, saying every 5 s how long remains until the instant.
func waitInstant(ctx context.Context, env *Env, tag string, t, instant time.Time) error {
	for {
		left := time.Until(t)
		if left <= 0 {
			return nil
		}
		env.statusf(tag, "waiting for the instant %s (in %s)", instant.UTC().Format("15:04:05"),
			time.Until(instant).Round(time.Second))
		if err := sleepCtx(ctx, min(left, 5*time.Second)); err != nil {
			return err
		}
	}
}

// measureAsynq waits for the runs of one repetition's instants and adds what it saw to r. It
// reports whether all of them ran in time.
func (w w4) measureAsynq(ctx context.Context, env *Env, p *asynqPeer, wc w4AsynqCase, r *Result, tag string, win []time.Time) (bool, error) {
	from, to := win[0], win[len(win)-1]
	want := wc.Jobs * len(win)
	deadline := to.Add(w4Wait)
	lastStatus := time.Time{}
	for {
		n := p.book.count(from, to)
		now := time.Now()
		if n >= want || now.After(deadline) {
			env.statusf(tag, "runs %d/%d", n, want)
			break
		}
		if now.Sub(lastStatus) >= time.Second {
			env.statusf(tag, "waiting for runs %d/%d", n, want)
			lastStatus = now
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return false, err
		}
	}
	// The queue drained, before the next instant's tasks arrive.
	until := to.Add(wc.Period - 100*time.Millisecond)
	if until.After(deadline) {
		until = deadline
	}
	drained, err := p.waitDrained(ctx, tag, to, until)
	if err != nil {
		return false, err
	}

	b := judgeRuns(p.book.runsOf(from, to), want)
	late := b.lateness
	lags := summarize(p.book.enqueueLags(from, to))
	r.addDist("lateness", "fire lateness", "ms", [3]string{"", "≤ 5 ms", "≤ 50 ms"}, late)
	r.add("start_rate", "start rate", "/s", "", b.startRate)
	r.add("drained", "queue drained after", "ms", "", drained)
	r.add("missed", "missed (no run within 60 s)", "count", "0", float64(want-b.ran))
	r.add("duplicate", "run twice", "count", "0", float64(b.dup))
	r.add("early", "started before nominal time", "count", "0", float64(b.early))
	r.add("enqueue_p50", "enqueue − nominal p50", "ms", "", lags.P50)
	r.add("enqueue_max", "enqueue − nominal, latest", "ms", "", lags.Max)
	s := summarize(late)
	env.statusf(tag, "%d/%d ran: lateness p50 %s p99 %s max %s; queue drained after %s; %d missed, %d twice",
		b.ran, want, formatValue(s.P50, "ms"), formatValue(s.P99, "ms"), formatValue(s.Max, "ms"),
		formatValue(drained, "ms"), want-b.ran, b.dup)
	return b.ran == want && !math.IsNaN(drained), nil
}

// runJudgement is what the runs of a set of (job, nominal time) pairs show.
type runJudgement struct {
	ran, dup, early int
	lateness        []float64 // first run of each pair: start − nominal, ms
	startRate       float64   // median over the instants of runs ÷ (last start − instant)
	lastStart       float64   // the latest first run's lateness, ms
}

// judgeRuns judges runs of want (job, nominal time) pairs: the first run of each pair counts,
// later ones are duplicates.
func judgeRuns(runs []asynqRun, want int) runJudgement {
	first := make(map[fireKey]int64, want)
	var j runJudgement
	for _, r := range runs {
		k := fireKey{r.job, r.nominal}
		if prev, ok := first[k]; ok {
			j.dup++
			first[k] = min(prev, r.start)
			continue
		}
		first[k] = r.start
	}
	j.ran = len(first)
	j.lateness = make([]float64, 0, len(first))
	spread := make(map[int64]float64)
	count := make(map[int64]int)
	for k, start := range first {
		l := ms(time.Duration(start - k.nominal))
		j.lateness = append(j.lateness, l)
		if l < 0 {
			j.early++
		}
		spread[k.nominal] = max(spread[k.nominal], l)
		count[k.nominal]++
	}
	var rates []float64
	j.lastStart = math.NaN()
	for nominal, s := range spread {
		if s > 0 {
			rates = append(rates, float64(count[nominal])/(s/1000))
		}
		if math.IsNaN(j.lastStart) || s > j.lastStart {
			j.lastStart = s
		}
	}
	j.startRate, _, _ = medianMinMax(rates)
	return j
}
