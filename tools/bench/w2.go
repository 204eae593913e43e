package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// w2 measures open-loop sustained load: manual triggers (gRPC TriggerJob) at a fixed arrival
// rate, each sent at its instant by one of many concurrent callers whether or not the ones
// before have returned or run, through tockd, the agent and the Go SDK. Every execution must
// run exactly once; the run waits until all have run and their results are committed.
//
// The open-loop machinery here (openLoop, awaitRuns, measureLoad) is shared: W3 is the same
// load at 10 per second on an idle cluster, W9 and W10 are W2 at one rate with tracing or
// another SDK.
type w2 struct{}

func (w2) ID() string   { return "W2" }
func (w2) Name() string { return "open-loop sustained load: manual triggers at 100, 1k, 5k, 10k/s" }

// loadCase is an open-loop load: manual triggers at Rate per second for Measure, after a
// Warmup at the same rate that is not counted.
type loadCase struct {
	// Name is the case's short name ("1k").
	Name string
	// Rate is the arrival rate, triggers per second.
	Rate float64
	// Warmup and Measure are how long the uncounted and the counted triggers arrive for.
	Warmup, Measure time.Duration
}

// count returns how many triggers arrive at the case's rate in d.
func (lc loadCase) count(d time.Duration) int { return max(1, int(math.Round(lc.Rate*d.Seconds()))) }

// capacity is the agent's capacity for the case: about a second of arrivals, so that the
// agent's limit is not what holds executions back.
func (lc loadCase) capacity() int { return max(256, int(lc.Rate)) }

// w2Cases returns the cases of the quick or the full set.
func w2Cases(quick bool) []loadCase {
	if quick {
		return []loadCase{{Name: "1k", Rate: 1000, Warmup: time.Second, Measure: 2 * time.Second}}
	}
	var out []loadCase
	for _, rate := range []float64{100, 1000, 5000, 10000} {
		out = append(out, loadCase{Name: rateName(rate), Rate: rate, Warmup: 3 * time.Second, Measure: 20 * time.Second})
	}
	return out
}

// rateName is a rate's short name: "100", "1k", "10k".
func rateName(rate float64) string {
	if rate >= 1000 && math.Mod(rate, 1000) == 0 {
		return strconv.Itoa(int(rate/1000)) + "k"
	}
	return strconv.Itoa(int(rate))
}

const (
	// loadStall is how long awaiting runs or commits may see no progress before giving up.
	loadStall = 30 * time.Second
	// loadMaxLag is how far behind its schedule a load's sender may fall before it stops
	// sending: the rate is then clearly beyond what Tock takes.
	loadMaxLag = 5 * time.Second
	// sustainedShare is the share of the arrival rate that handler starts must reach for a
	// rate to count as sustained.
	sustainedShare = 0.95
)

func (w w2) Run(ctx context.Context, env *Env) ([]Result, error) {
	cases := w2Cases(env.Quick)
	var names []string
	for _, lc := range cases {
		names = append(names, lc.Name)
	}
	chosen, err := env.selectCases(names)
	if err != nil {
		return nil, err
	}
	var out []Result
	best, peak := "", 0.0
	for _, lc := range cases {
		if !slices.Contains(chosen, lc.Name) {
			continue
		}
		r, err := w.runCase(ctx, env, lc)
		if err != nil {
			return out, fmt.Errorf("case %s: %w", lc.Name, err)
		}
		if sustained(&r, lc.Rate, 100) {
			best = formatValue(lc.Rate, "/s")
		}
		if v := r.medianOf("exec_rate"); v > peak {
			peak = v
		}
		out = append(out, r)
	}
	if len(out) > 0 {
		last := &out[len(out)-1]
		if best == "" {
			best = "none of the rates measured"
		}
		last.Notes = append(last.Notes, fmt.Sprintf("Highest arrival rate sustained in this run: %s (median handler starts "+
			"≥ %.0f%% of the arrival rate and median trigger→start p99 < 100 ms). The most Tock worked off: %s "+
			"(the highest median of executions per second, first trigger to last start).", best, 100*sustainedShare,
			formatValue(peak, "/s")))
	}
	return out, nil
}

// sustained reports whether r held rate: median handler starts per second at least
// sustainedShare of it and median p99 below p99Limit milliseconds.
func sustained(r *Result, rate, p99Limit float64) bool {
	return r.medianOf("start_rate") >= sustainedShare*rate && r.medianOf("trigger_start_p99") < p99Limit
}

func (w2) runCase(ctx context.Context, env *Env, lc loadCase) (Result, error) {
	r := Result{Workload: "W2", Case: lc.Name, Title: fmt.Sprintf("Open-loop load: manual triggers at %s for %s",
		formatValue(lc.Rate, "/s"), lc.Measure)}
	c, err := env.startTock(ctx, clusterConfig{Name: "w2_" + lc.Name, Capacity: lc.capacity()})
	if err != nil {
		return r, err
	}
	defer func() { _ = c.close(context.WithoutCancel(ctx)) }()
	p99Target, rateTarget := "", ""
	switch {
	case lc.Rate == 1000:
		p99Target = "≤ 10 ms"
	case lc.Rate >= 5000:
		p99Target, rateTarget = "< 100 ms", "≥ 5.00k/s"
	}
	var agg loadTotals
	reps := loadReps(env)
	for rep := range reps {
		tag := loadRepTag("W2", lc.Name, rep, reps)
		run, err := measureLoad(ctx, env, c, tag, lc, fmt.Sprintf("w2-%s-r%03d", strings.ToLower(lc.Name), rep+1))
		if err != nil {
			return r, err
		}
		run.addTo(&r, loadTargets{rate: rateTarget, p99: p99Target})
		run.addCPU(&r)
		agg.add(run)
	}
	r.Notes = append(r.Notes, loadNotes(env, lc)...)
	r.Notes = append(r.Notes, agg.evidence(env.Machine.Cores)...)
	if top, err := topStatements(ctx, env, c.db, 6); err != nil {
		env.statusf("W2 "+lc.Name, "could not read pg_stat_statements: %v", err)
	} else if top != "" {
		r.Notes = append(r.Notes, top)
	}
	metricsFile := fmt.Sprintf("W2-%s-tockd-metrics.txt", lc.Name)
	if err := c.saveMetrics(ctx, metricsFile); err != nil {
		env.statusf("W2 "+lc.Name, "could not save tockd metrics: %v", err)
	} else {
		r.Notes = append(r.Notes, "tockd's /metrics at the end are in the output folder as "+metricsFile+".")
	}
	r.Summary = loadSummary(&r, lc)
	return r, nil
}

// trigger is one TriggerJob call of an open-loop load and what came of it.
type trigger struct {
	due            time.Time // when the load meant to send it
	sent, returned time.Time // around the call, this process's clock
	created        time.Time // the execution's create time, the database's clock
	id             string
	err            error
}

// openLoop triggers job n times at rate per second: the i-th call is due i/rate seconds after
// the first and is sent then, whether or not earlier calls have returned, each by a goroutine
// of its own. At most inFlight(rate) calls are in flight; beyond that the sender waits,
// which shows as sent later than due. When maxLag is positive and the sender
// falls that far behind, it sends no more: Tock is not taking the rate, and the calls made
// so far show how much it takes. It says every 5 s how far it is, and returns the calls it
// made once every one has returned; calls that failed carry their error.
func (c *tockCluster) openLoop(ctx context.Context, tag, job string, rate float64, n int, maxLag time.Duration) ([]trigger, error) {
	out := make([]trigger, n)
	period := time.Duration(float64(time.Second) / rate)
	inFlight := make(chan struct{}, maxInFlight(rate))
	var wg sync.WaitGroup
	start := time.Now()
	nextStatus := start.Add(5 * time.Second)
	for i := range n {
		due := start.Add(time.Duration(i) * period)
		if err := sleepCtx(ctx, time.Until(due)); err != nil {
			wg.Wait()
			return nil, err
		}
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		if lag := time.Since(due); maxLag > 0 && lag > maxLag {
			<-inFlight
			c.env.statusf(tag, "stopped after %d/%d triggers: the calls are %s behind their due instants", i, n, lag.Round(time.Millisecond))
			out = out[:i]
			break
		}
		wg.Add(1)
		go func() {
			defer func() {
				<-inFlight
				wg.Done()
			}()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			t := &out[i]
			t.due, t.sent = due, time.Now()
			resp, err := c.jobs.TriggerJob(cctx, &tockv1.TriggerJobRequest{Name: job})
			t.returned = time.Now()
			if err != nil {
				t.err = fmt.Errorf("trigger %s: %w", job, err)
				return
			}
			t.id = resp.GetExecution().GetId()
			t.created = resp.GetExecution().GetCreateTime().AsTime()
		}()
		if now := time.Now(); now.After(nextStatus) {
			c.env.statusf(tag, "triggered %d/%d", i+1, n)
			nextStatus = now.Add(5 * time.Second)
		}
	}
	wg.Wait()
	return out, nil
}

// loadReps is how many repetitions the open-loop workloads (W2, W9, W10) make: env.Reps, or
// one in a quick run, which checks the program rather than measures and must stay short.
func loadReps(env *Env) int {
	if env.Quick {
		return 1
	}
	return env.Reps
}

// loadRepTag is the status tag of repetition rep (from 0) of reps of a workload case.
func loadRepTag(id, c string, rep, reps int) string {
	return fmt.Sprintf("%s %s rep %d/%d", id, c, rep+1, reps)
}

// maxInFlight is how many calls an open loop at rate has in flight at most: two seconds of
// arrivals, and at least 1,000, so that only a stall longer than that holds the sender back.
func maxInFlight(rate float64) int { return max(1000, int(2*rate)) }

// succeeded returns how many trigger calls succeeded.
func succeeded(trig []trigger) int {
	n := 0
	for _, t := range trig {
		if t.err == nil {
			n++
		}
	}
	return n
}

// awaitRuns waits until the handler service holds at least want records within f, giving
// up (without an error) when none is added for stall. It returns how many it holds and
// when it saw the last one arrive.
func (c *tockCluster) awaitRuns(ctx context.Context, tag string, f recordFilter, want int, stall time.Duration) (int, time.Time, error) {
	last, lastChange, lastStatus := -1, time.Now(), time.Now()
	for {
		n, err := c.records.count(ctx, f)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("count handler runs: %w", err)
		}
		now := time.Now()
		if n != last {
			last, lastChange = n, now
		}
		if n >= want || now.Sub(lastChange) > stall {
			return n, lastChange, nil
		}
		if now.Sub(lastStatus) >= 2*time.Second {
			c.env.statusf(tag, "waiting for handler runs %d/%d", n, want)
			lastStatus = now
		}
		if err := c.alive(); err != nil {
			return 0, time.Time{}, err
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return 0, time.Time{}, err
		}
	}
}

// runMatch is the outcome of a load's triggers, matched with the handler's records by
// execution id.
type runMatch struct {
	// first holds, per trigger, when its execution's handler first started; zero when the
	// call failed or the handler did not run.
	first []time.Time
	// notRun counts successful triggers whose handler did not run, twice the runs beyond
	// the first, failed the calls that failed.
	notRun, twice, failed int
}

func matchRuns(trig []trigger, recs []handlerRecord) runMatch {
	byID := make(map[string][]handlerRecord, len(recs))
	for _, rec := range recs {
		byID[rec.ID] = append(byID[rec.ID], rec)
	}
	m := runMatch{first: make([]time.Time, len(trig))}
	for i, t := range trig {
		if t.err != nil {
			m.failed++
			continue
		}
		runs := byID[t.id]
		if len(runs) == 0 {
			m.notRun++
			continue
		}
		m.twice += len(runs) - 1
		first := runs[0].Start
		for _, r := range runs[1:] {
			first = min(first, r.Start)
		}
		m.first[i] = time.Unix(0, first)
	}
	return m
}

// loadSnapshot is the resources used up to a moment.
type loadSnapshot struct {
	at                    time.Time
	tockd, agent, handler procUsage
	pg, self              time.Duration
	watched               time.Duration // the CPU time of the processes measureLoad was asked to watch
	tockdWait             time.Duration // how long tockd's threads have waited for a CPU
	metrics               map[string]float64
}

func snapshotLoad(ctx context.Context, c *tockCluster, watch []int) loadSnapshot {
	s := loadSnapshot{at: time.Now(), pg: treeCPU(c.env.PG.proc.pid()), self: usageOf(os.Getpid()).CPU}
	for _, pid := range watch {
		s.watched += usageOf(pid).CPU
	}
	s.tockd, s.agent = c.usage()
	s.handler = c.handlerUsage()
	s.tockdWait = cpuWait(c.tockd.pid())
	s.metrics, _ = c.scrape(ctx)
	return s
}

// loadRun is what one repetition of an open-loop load measured.
type loadRun struct {
	lc    loadCase
	trig  []trigger
	match runMatch
	// ran is how many executions ran at least once; startRate how many handlers started per
	// second while the triggers arrived (the measured duration from the first due instant),
	// execRate how many per second from the first due instant to the last start, triggerRate
	// how many calls succeeded per second from the first due instant to the last return.
	ran                              int
	startRate, execRate, triggerRate float64
	// errors counts the failed calls by gRPC status code.
	errors map[codes.Code]int
	// dueToStart, createdToStart, call and lag are in milliseconds: handler start minus
	// the trigger's due instant, minus the execution's create time; the call's duration;
	// sent minus due.
	dueToStart, createdToStart, call, lag []float64
	// drain is from the last trigger's due instant to the last handler start, committed
	// from then until no execution of the run was unfinished in the database (NaN when that
	// did not happen); unfinished is how many were left then.
	drain, committed float64
	unfinished       int
	// retried and unsuccessful count executions of the run in the database with attempt > 1
	// and not in state succeeded.
	retried, unsuccessful int
	// before and after bound the resources: from just before the first trigger to when every
	// result was committed.
	before, after loadSnapshot
	activity      pgActivity
}

// measureLoad runs one repetition of lc on c: a warm-up (its own job, not counted; awaited
// until every result is committed), then the measured triggers of job (created here), then
// waits until each has run and every result is committed, and matches the handler's records
// with the triggers. The CPU time of the processes in watch (such as Jaeger) is measured
// over the same interval as the cluster's.
func measureLoad(ctx context.Context, env *Env, c *tockCluster, tag string, lc loadCase, job string, watch ...int) (*loadRun, error) {
	db, err := pgx.Connect(ctx, env.PG.url(c.db))
	if err != nil {
		return nil, fmt.Errorf("connect to the case's database: %w", err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	warmJob := job + "-warm"
	for _, name := range []string{warmJob, job} {
		if _, err := c.jobs.CreateJob(ctx, &tockv1.CreateJobRequest{Job: noopJob(name, "")}); err != nil {
			return nil, fmt.Errorf("create job %s: %w", name, err)
		}
	}

	env.statusf(tag, "warm-up: %s of triggers at %s", lc.Warmup, formatValue(lc.Rate, "/s"))
	warm, err := c.openLoop(ctx, tag, warmJob, lc.Rate, lc.count(lc.Warmup), loadMaxLag)
	if err != nil {
		return nil, err
	}
	if _, _, err := c.awaitRuns(ctx, tag, recordFilter{Prefix: warmJob}, succeeded(warm), loadStall); err != nil {
		return nil, err
	}
	if _, _, err := awaitCommitted(ctx, env, db, tag, warmJob); err != nil {
		return nil, err
	}

	n := lc.count(lc.Measure)
	run := &loadRun{lc: lc}
	env.statusf(tag, "%d triggers at %s", n, formatValue(lc.Rate, "/s"))
	run.before = snapshotLoad(ctx, c, watch)
	sampler := startActivitySampler(ctx, db, 250*time.Millisecond)
	run.trig, err = c.openLoop(ctx, tag, job, lc.Rate, n, loadMaxLag)
	run.activity = sampler.stop()
	if err != nil {
		return nil, err
	}
	ok := succeeded(run.trig)
	if _, _, err := c.awaitRuns(ctx, tag, recordFilter{Prefix: job}, ok, loadStall); err != nil {
		return nil, err
	}
	lastDue := run.trig[len(run.trig)-1].due
	committedAt, left, err := awaitCommitted(ctx, env, db, tag, job)
	if err != nil {
		return nil, err
	}
	run.after = snapshotLoad(ctx, c, watch)
	run.unfinished = left
	run.committed = math.NaN()
	if left == 0 {
		run.committed = ms(committedAt.Sub(lastDue))
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE attempt > 1), count(*) FILTER (WHERE state <> 'succeeded')
		FROM executions WHERE job = $1`, job).Scan(&run.retried, &run.unsuccessful); err != nil {
		return nil, fmt.Errorf("count retried and unsuccessful executions: %w", err)
	}

	recs, err := c.records.records(ctx, recordFilter{Prefix: job})
	if err != nil {
		return nil, fmt.Errorf("read handler runs: %w", err)
	}
	run.analyze(recs)
	s := summarize(run.dueToStart)
	env.statusf(tag, "starts %s, triggers %s; trigger→start p50 %s p99 %s p99.9 %s; %d not run, %d twice, %d errors, %d unsuccessful",
		formatValue(run.startRate, "/s"), formatValue(run.triggerRate, "/s"), formatValue(s.P50, "ms"),
		formatValue(s.P99, "ms"), formatValue(s.P999, "ms"), run.match.notRun, run.match.twice, run.match.failed, run.unsuccessful)
	return run, c.alive()
}

// analyze derives the run's figures from its triggers and the handler's records.
func (run *loadRun) analyze(recs []handlerRecord) {
	run.match = matchRuns(run.trig, recs)
	first := run.trig[0].due
	windowEnd := first.Add(run.lc.Measure)
	var lastStart, lastReturned time.Time
	inWindow := 0
	for i, t := range run.trig {
		if t.err != nil {
			continue
		}
		run.call = append(run.call, ms(t.returned.Sub(t.sent)))
		run.lag = append(run.lag, ms(t.sent.Sub(t.due)))
		if t.returned.After(lastReturned) {
			lastReturned = t.returned
		}
		start := run.match.first[i]
		if start.IsZero() {
			continue
		}
		run.ran++
		run.dueToStart = append(run.dueToStart, ms(start.Sub(t.due)))
		run.createdToStart = append(run.createdToStart, ms(start.Sub(t.created)))
		if start.Before(windowEnd) {
			inWindow++
		}
		if start.After(lastStart) {
			lastStart = start
		}
	}
	run.startRate = float64(inWindow) / run.lc.Measure.Seconds()
	if span := lastReturned.Sub(first); span > 0 {
		run.triggerRate = float64(succeeded(run.trig)) / span.Seconds()
	}
	run.drain = math.NaN()
	if !lastStart.IsZero() {
		run.drain = ms(lastStart.Sub(run.trig[len(run.trig)-1].due))
		if span := lastStart.Sub(first); span > 0 {
			run.execRate = float64(run.ran) / span.Seconds()
		}
	}
	run.errors = make(map[codes.Code]int)
	for _, t := range run.trig {
		if t.err != nil {
			run.errors[status.Code(t.err)]++
		}
	}
}

// loadTargets are BENCHMARKS.md's targets for a load's figures; empty for none.
type loadTargets struct {
	rate, p50, p99 string
}

// addTo adds the repetition's figures to r.
func (run *loadRun) addTo(r *Result, t loadTargets) {
	r.add("sent", "triggers sent", "count", "", float64(len(run.trig)))
	r.add("start_rate", "handler starts per second", "/s", t.rate, run.startRate)
	r.add("exec_rate", "executions per second, first trigger to last start", "/s", "", run.execRate)
	r.add("trigger_rate", "triggers per second", "/s", "", run.triggerRate)
	s := summarize(run.dueToStart)
	const label = "trigger→start"
	r.add("trigger_start_p50", label+" p50", "ms", t.p50, s.P50)
	r.add("trigger_start_p99", label+" p99", "ms", t.p99, s.P99)
	r.add("trigger_start_p999", label+" p99.9", "ms", "", s.P999)
	r.add("trigger_start_max", label+" max", "ms", "", s.Max)
	r.series("trigger_start", label, "ms").Reps = append(r.series("trigger_start", label, "ms").Reps, run.dueToStart)
	cs := summarize(run.createdToStart)
	r.add("created_start_p50", "created→start p50", "ms", "", cs.P50)
	r.add("created_start_p99", "created→start p99", "ms", "", cs.P99)
	call := summarize(run.call)
	r.add("call_p50", "trigger call p50", "ms", "", call.P50)
	r.add("call_p99", "trigger call p99", "ms", "", call.P99)
	r.add("lag_p99", "send lag p99", "ms", "", summarize(run.lag).P99)
	r.add("drain", "last start after last trigger", "ms", "", run.drain)
	r.add("all_committed", "all committed after last trigger", "ms", "", run.committed)
	r.add("not_run", "not run", "count", "0", float64(run.match.notRun))
	r.add("run_twice", "run twice", "count", "0", float64(run.match.twice))
	r.add("failed", "trigger errors", "count", "0", float64(run.match.failed))
	r.add("unsuccessful", "executions not succeeded", "count", "0", float64(run.unsuccessful))
	r.add("retried", "retried executions", "count", "0", float64(run.retried))
}

// cpuPerExec returns the CPU time the processes used between the snapshots per execution
// run, in microseconds: tockd, the agent, the handler service, PostgreSQL and this program
// (the load generator).
func (run *loadRun) cpuPerExec() (tockd, agent, handler, pg, self float64) {
	return run.perExec(run.before.tockd.CPU, run.after.tockd.CPU), run.perExec(run.before.agent.CPU, run.after.agent.CPU),
		run.perExec(run.before.handler.CPU, run.after.handler.CPU), run.perExec(run.before.pg, run.after.pg),
		run.perExec(run.before.self, run.after.self)
}

// perExec returns b − a per execution run, in microseconds; NaN when none ran or b < a (the
// processes counted in a exited before b).
func (run *loadRun) perExec(a, b time.Duration) float64 {
	if run.ran == 0 || b < a {
		return math.NaN()
	}
	return float64(b-a) / float64(time.Microsecond) / float64(run.ran)
}

// addCPU adds the CPU per execution of every process, and the cores tockd and PostgreSQL
// kept busy.
func (run *loadRun) addCPU(r *Result) {
	tockd, agent, handler, pg, self := run.cpuPerExec()
	r.add("tockd_cpu", "tockd CPU per execution", "µs", "", tockd)
	r.add("agent_cpu", "agent CPU per execution", "µs", "", agent)
	r.add("handler_cpu", "handler service CPU per execution", "µs", "", handler)
	r.add("pg_cpu", "PostgreSQL CPU per execution", "µs", "", pg)
	r.add("bench_cpu", "load generator CPU per execution", "µs", "", self)
	wall := run.after.at.Sub(run.before.at).Seconds()
	r.add("tockd_cores", "tockd cores busy", "", "", (run.after.tockd.CPU-run.before.tockd.CPU).Seconds()/wall)
	r.add("pg_cores", "PostgreSQL cores busy", "", "", max(0, run.after.pg-run.before.pg).Seconds()/wall)
}

// loadNotes say what a load measured.
func loadNotes(env *Env, lc loadCase) []string {
	quick := ""
	if env.Quick {
		quick = " A quick run makes one repetition."
	}
	return []string{
		fmt.Sprintf("Open loop: %d TriggerJob calls (gRPC, one connection) per repetition, the i-th due i/rate after the "+
			"first and sent then by a goroutine of its own whether or not earlier calls had returned (at most %d in "+
			"flight), after %s of uncounted warm-up triggers at the same rate on a job of their own, whose executions "+
			"all ran and were committed first. One job per repetition; the agent's capacity is %d. When the sender "+
			"falls %s behind its schedule it sends no more (the rate is then beyond what Tock takes): triggers sent "+
			"says how many it sent.%s",
			lc.count(lc.Measure), maxInFlight(lc.Rate), lc.Warmup, lc.capacity(), loadMaxLag, quick),
		"trigger→start: when the bench handler started (its first statement, in the handler service's process) minus " +
			"the instant the trigger was due to be sent (not when it was sent, so that a sender held back by slow calls " +
			"counts against Tock). Send lag: sent minus due. created→start: handler start minus the execution's " +
			"createTime (the database clock in the trigger's transaction).",
		"Handler starts per second: handlers that started while the triggers arrived (from the first due instant for " +
			"the measured duration) divided by that duration; executions per second: every execution that ran divided " +
			"by the time from the first due instant to the last handler start (what Tock worked off, backlog " +
			"included); triggers per second: successful calls divided by the time from the first due instant to the " +
			"last call's return. A rate is sustained when starts reach 95% of it.",
		"The run waits until every execution has run (the handler's records) and none is pending, assigned or running " +
			"in the database (polled every 100 ms), giving up after 30 s without progress. Not run / run twice: from the " +
			"handler's records matched with the triggers by execution id; executions not succeeded and retried " +
			"(attempt > 1): from the database.",
		"CPU per execution: CPU time (utime + stime in /proc) of each process from just before the first measured " +
			"trigger until every result was committed, divided by the executions run; PostgreSQL is the postmaster and " +
			"its backends alive at both ends (a backend that exits in between, as when tockd drops a connection whose " +
			"query was cancelled, takes its CPU time with it: a lower bound under overload); the load generator is this " +
			"program (the gRPC client). Cores busy: the same CPU time divided by that interval.",
	}
}

// loadSummary is the one-line summary of a load case.
func loadSummary(r *Result, lc loadCase) string {
	med := func(k string) string {
		m := r.find(k)
		if m == nil {
			return "–"
		}
		return formatValue(r.medianOf(k), m.Unit)
	}
	total := func(k string) string { return formatValue(r.totalOf(k), "count") }
	return fmt.Sprintf("at %s: starts %s (first trigger to last start %s), triggers %s; trigger→start p50 %s, p99 %s, p99.9 %s; created→start p50 %s; "+
		"in all repetitions: not run %s, run twice %s, trigger errors %s, not succeeded %s",
		formatValue(lc.Rate, "/s"), med("start_rate"), med("exec_rate"), med("trigger_rate"), med("trigger_start_p50"), med("trigger_start_p99"),
		med("trigger_start_p999"), med("created_start_p50"), total("not_run"), total("run_twice"), total("failed"), total("unsuccessful"))
}

// awaitCommitted waits until no execution of job is pending, assigned or running, giving up
// when the count has not fallen for loadStall. It returns when the count reached zero (or
// it gave up) and how many were left.
func awaitCommitted(ctx context.Context, env *Env, db *pgx.Conn, tag, job string) (time.Time, int, error) {
	last, lastChange, lastStatus := -1, time.Now(), time.Now()
	for {
		var live int
		err := db.QueryRow(ctx, `SELECT count(*) FROM executions WHERE job = $1 AND state IN ('pending', 'assigned', 'running')`,
			job).Scan(&live)
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("count unfinished executions: %w", err)
		}
		now := time.Now()
		if live == 0 {
			return now, 0, nil
		}
		if live != last {
			last, lastChange = live, now
		}
		if now.Sub(lastChange) > loadStall {
			env.statusf(tag, "gave up waiting: %d executions still unfinished", live)
			return now, live, nil
		}
		if now.Sub(lastStatus) >= 2*time.Second {
			env.statusf(tag, "waiting for results to be committed: %d executions unfinished", live)
			lastStatus = now
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return time.Time{}, 0, err
		}
	}
}

// scrape returns tockd's /metrics as a map from series (name and labels, as written) to
// value.
func (c *tockCluster) scrape(ctx context.Context) (map[string]float64, error) {
	var b strings.Builder
	if err := c.httpGet(ctx, "/metrics", &b); err != nil {
		return nil, fmt.Errorf("read tockd metrics: %w", err)
	}
	out := make(map[string]float64)
	for _, line := range strings.Split(b.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// cpuWait returns how long the threads of process pid alive now have waited for a CPU while
// runnable (the second field of /proc/<pid>/task/<tid>/schedstat, nanoseconds); 0 where it
// cannot be read.
func cpuWait(pid int) time.Duration {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// topStatements describes the n statements of database db with the most execution time
// (pg_stat_statements, since the database was created: warm-ups included); empty when
// pg_stat_statements is not loaded. The benchmark's own probes are left out.
func topStatements(ctx context.Context, env *Env, db string, n int) (string, error) {
	if !env.PG.statements {
		return "", nil
	}
	conn, err := pgx.Connect(ctx, env.PG.url("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT s.calls, s.total_exec_time, s.mean_exec_time,
			left(regexp_replace(s.query, '\s+', ' ', 'g'), 90)
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = $1 AND s.query !~ 'pg_stat_activity|FILTER \(WHERE attempt > 1\)|^SELECT count\(\*\) FROM executions WHERE job = \$1'
		ORDER BY s.total_exec_time DESC LIMIT $2`, db, n)
	if err != nil {
		return "", fmt.Errorf("read pg_stat_statements: %w", err)
	}
	var parts []string
	for rows.Next() {
		var calls int64
		var total, mean float64
		var query string
		if err := rows.Scan(&calls, &total, &mean, &query); err != nil {
			rows.Close()
			return "", fmt.Errorf("read pg_stat_statements: %w", err)
		}
		parts = append(parts, fmt.Sprintf("`%s` %d calls, mean %s, total %s", strings.ReplaceAll(query, "`", "'"), calls,
			formatValue(mean, "ms"), formatValue(total, "ms")))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("read pg_stat_statements: %w", err)
	}
	if len(parts) == 0 {
		return "", nil
	}
	return "Statements with the most execution time in the case's database (pg_stat_statements, warm-ups included; " +
		"COMMIT includes its WAL flush): " + strings.Join(parts, "; ") + ".", nil
}

// pgActivity counts what the case database's client backends were doing, over samples of
// pg_stat_activity.
type pgActivity struct {
	samples int
	counts  map[string]int // "state" or "state: wait_event_type/wait_event" → backend-samples
}

// activitySampler samples pg_stat_activity in the background until stopped.
type activitySampler struct {
	quit chan struct{}
	done chan pgActivity
}

// startActivitySampler samples the client backends of db's database every interval. db is
// the sampler's until stop returns. Stopping never interrupts a query: pgx closes a
// connection whose query is cancelled, and db outlives the sampler.
func startActivitySampler(ctx context.Context, db *pgx.Conn, interval time.Duration) *activitySampler {
	s := &activitySampler{quit: make(chan struct{}), done: make(chan pgActivity, 1)}
	go func() {
		a := pgActivity{counts: make(map[string]int)}
		defer func() { s.done <- a }()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.quit:
				return
			case <-tick.C:
			}
			rows, err := db.Query(ctx, `SELECT COALESCE(state, ''), COALESCE(wait_event_type, ''), COALESCE(wait_event, ''), count(*)::int
				FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'
				AND pid <> pg_backend_pid() GROUP BY 1, 2, 3`)
			if err != nil {
				return
			}
			for rows.Next() {
				var state, waitType, wait string
				var n int
				if rows.Scan(&state, &waitType, &wait, &n) != nil {
					continue
				}
				key := state
				if waitType != "" && waitType != "Client" {
					key += ": " + waitType + "/" + wait
				}
				a.counts[key] += n
			}
			rows.Close()
			a.samples++
		}
	}()
	return s
}

// stop ends the sampling and returns what it saw.
func (s *activitySampler) stop() pgActivity {
	close(s.quit)
	return <-s.done
}

// loadTotals adds up the evidence of a case's repetitions: tockd's counters and the
// database backends' activity.
type loadTotals struct {
	runs     int
	metrics  map[string]float64 // summed differences
	activity pgActivity
	errors   map[codes.Code]int // failed trigger calls by gRPC status code
	cores    struct{ tockd, agent, handler, pg, self, wall float64 }
	// tockdWait is how long tockd's threads waited for a CPU while runnable, seconds.
	tockdWait float64
}

func (t *loadTotals) add(run *loadRun) {
	t.runs++
	if t.metrics == nil {
		t.metrics = make(map[string]float64)
		t.activity.counts = make(map[string]int)
	}
	for k, v := range run.after.metrics {
		t.metrics[k] += v - run.before.metrics[k]
	}
	if t.errors == nil {
		t.errors = make(map[codes.Code]int)
	}
	for code, n := range run.errors {
		t.errors[code] += n
	}
	t.activity.samples += run.activity.samples
	for k, v := range run.activity.counts {
		t.activity.counts[k] += v
	}
	a, b := run.before, run.after
	t.cores.tockd += (b.tockd.CPU - a.tockd.CPU).Seconds()
	t.cores.agent += (b.agent.CPU - a.agent.CPU).Seconds()
	t.cores.handler += (b.handler.CPU - a.handler.CPU).Seconds()
	t.cores.pg += (b.pg - a.pg).Seconds()
	t.cores.self += (b.self - a.self).Seconds()
	t.cores.wall += b.at.Sub(a.at).Seconds()
	t.tockdWait += (b.tockdWait - a.tockdWait).Seconds()
}

// evidence describes where the time went, over all repetitions of a case.
func (t *loadTotals) evidence(cores int) []string {
	if t.runs == 0 {
		return nil
	}
	m := t.metrics
	mean := func(name string) string {
		n := m[name+"_count"]
		if n == 0 {
			return "–"
		}
		return formatValue(1000*m[name+"_sum"]/n, "ms")
	}
	batch := math.NaN()
	if n := m["tock_claim_batch_size_count"]; n > 0 {
		batch = m["tock_claim_batch_size_sum"] / n
	}
	w := t.cores.wall
	out := []string{fmt.Sprintf("Where the time went (all repetitions, from the first measured trigger until every result was "+
		"committed): cores busy — tockd %.2f, PostgreSQL %.2f, agent %.2f, handler service %.2f, load generator %.2f "+
		"(of %d); tockd's threads waited %.1f s for a CPU while runnable (run-queue delay, /proc/<pid>/task/*/schedstat) "+
		"against %.1f s on one. tockd's counters: %.0f claim transactions, %.1f executions per claim on average; mean "+
		"schedule→assign %s, schedule→start %s (tock_schedule_to_*_seconds); %.0f store transaction retries, %.0f "+
		"lease expiries, %.0f results rejected.",
		t.cores.tockd/w, t.cores.pg/w, t.cores.agent/w, t.cores.handler/w, t.cores.self/w, cores, t.tockdWait, t.cores.tockd,
		m["tock_claim_batch_size_count"], batch, mean("tock_schedule_to_assign_seconds"), mean("tock_schedule_to_start_seconds"),
		m["tock_store_tx_retries_total"], m["tock_lease_expiries_total"], m["tock_results_rejected_total"])}
	if len(t.errors) > 0 {
		var parts []string
		for code, n := range t.errors {
			parts = append(parts, fmt.Sprintf("%d %s", n, code))
		}
		slices.Sort(parts)
		out = append(out, "Failed trigger calls by gRPC status (each call has a 30 s deadline): "+strings.Join(parts, ", ")+".")
	}
	if s := t.activity.describe(); s != "" {
		out = append(out, "tockd's PostgreSQL backends while the triggers arrived (pg_stat_activity every 250 ms): "+s+".")
	}
	return out
}

// describe renders the activity as the mean number of backends in each state, busiest first.
func (a pgActivity) describe() string {
	if a.samples == 0 {
		return ""
	}
	type kv struct {
		k string
		v int
	}
	var all []kv
	total := 0
	for k, v := range a.counts {
		all = append(all, kv{k, v})
		total += v
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	parts := []string{fmt.Sprintf("%.1f backends on average", float64(total)/float64(a.samples))}
	for i, e := range all {
		if i == 6 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.1f", e.k, float64(e.v)/float64(a.samples)))
	}
	return strings.Join(parts, "; ")
}
