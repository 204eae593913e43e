package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// w8 measures one tockd replica at scale: many agents connected to it (hosted in one helper
// process, agenthost.go), idle and while manual triggers arrive at a fixed rate; then many
// registered cron jobs whose schedules are spread evenly, so that a steady trickle of them
// fires, which shows the scheduling loop's cost and timeliness with a large jobs table.
type w8 struct{}

func (w8) ID() string   { return "W8" }
func (w8) Name() string { return "scale: many agents on one replica; many registered jobs" }

const (
	w8LoadJob   = "w8-load"
	w8JobPrefix = "w8-job-"
	// w8Parallel is how many CreateJob calls are in flight at once while registering jobs.
	w8Parallel = 64
	// w8AgentCapacity is each hosted agent's capacity.
	w8AgentCapacity = 16
	// w8FiresPerMinute is what the spread of the schedules aims at (at most).
	w8FiresPerMinute = 1000
	// w8Jobs is how many jobs a full run registers: 200,000, since registering 1,000,000
	// through the API takes longer than five minutes on a 2-core machine (the run's note
	// gives the rate).
	w8Jobs = 200_000
)

// w8Sizes are the dimensions of a run.
type w8Sizes struct {
	agents, jobs       int
	idle, load, window time.Duration
	grace, settle      time.Duration
	rate               int
}

func (w w8) Run(ctx context.Context, env *Env) ([]Result, error) {
	sz := w8Sizes{agents: 1000, jobs: w8Jobs, idle: 20 * time.Second, load: 10 * time.Second, rate: 500,
		window: 60 * time.Second, grace: 10 * time.Second, settle: 10 * time.Second}
	if env.Quick {
		sz = w8Sizes{agents: 20, jobs: 2_000, idle: 500 * time.Millisecond, load: time.Second, rate: 500,
			window: time.Second, grace: time.Second, settle: time.Second}
	}
	c, err := env.startTock(ctx, clusterConfig{Name: "w8", NoAgent: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.close(context.WithoutCancel(ctx)) }()
	tockd0 := usageOf(c.tockd.pid())
	began := time.Now()
	host, err := c.startAgentHost(ctx, sz.agents, w8AgentCapacity)
	if err != nil {
		return nil, err
	}
	connectTime := time.Since(began)
	env.statusf("setup w8", "%d agents connected in %s", sz.agents, connectTime.Round(100*time.Millisecond))
	if _, err := c.jobs.CreateJob(ctx, &tockv1.CreateJobRequest{Job: noopJob(w8LoadJob, "")}); err != nil {
		return nil, fmt.Errorf("create job: %w", err)
	}

	ra := Result{Workload: "W8", Case: "agents", Title: fmt.Sprintf(
		"%d agents on one replica: idle for %s, then %d manual triggers/s for %s", sz.agents, sz.idle, sz.rate, sz.load)}
	for rep := range quickReps(env) {
		if err := w.agentsRep(ctx, env, c, host, &ra, env.repTag("W8", "agents", rep), sz); err != nil {
			return nil, err
		}
	}
	hostUse := usageOf(host.pid())
	ra.Notes = append(ra.Notes,
		fmt.Sprintf("The %d agents run in one helper process (this program with TOCK_BENCH_ROLE=agent-host): each is an "+
			"agent.Agent of package agent, the code tock-agent runs, on a loopback port of its own, with its own registry "+
			"connection (tockd's built-in registry) and its own Execute stream to the one bench handler service; tockd "+
			"dials each and holds one Connect session per agent. A tock-agent process takes some 18–23 MB (W6), so a "+
			"thousand of them would take most of this machine's memory.", sz.agents),
		fmt.Sprintf("tockd before the agents: RSS %.1f MB. All %d agents connected %s after the host started. Agent host: "+
			"RSS %.1f MB at the end (%.0f KB per agent), peak %.1f MB.", mb(tockd0.RSS), sz.agents,
			connectTime.Round(100*time.Millisecond), mb(hostUse.RSS), float64(hostUse.RSS)/1024/float64(sz.agents), mb(hostUse.HWM)),
		"idle: no executions; the agents heartbeat every second and refresh their registrations (every 5 s, a third of "+
			"the 15 s TTL). Sessions opened: tockd's log lines saying it opens a session with an agent it owns, in the window "+
			"(an agent whose registration lapsed is dropped and its session reopened when it registers again). load: TriggerJob on one job at a fixed rate (open loop); trigger→start is the handler's start "+
			"minus the sending of the TriggerJob call. CPU figures are the process's CPU time over the window divided by "+
			"its wall time (100% is one core); PostgreSQL is the postmaster, its backends and workers, and those that "+
			"exited (the postmaster's cutime and cstime).")

	med := w8Median
	ra.Summary = fmt.Sprintf("%d agents: tockd RSS %s idle, %s after load (peak %s); tockd CPU %s idle, %s at %d triggers/s; "+
		"trigger→start p50 %s, p99 %s; not run %s; sessions reopened %s idle, %s under load",
		sz.agents, med(&ra, "tockd_rss_idle"), med(&ra, "tockd_rss_load"), med(&ra, "tockd_hwm"), med(&ra, "tockd_cpu_idle"),
		med(&ra, "tockd_cpu_load"), sz.rate, med(&ra, "trigger_start_p50"), med(&ra, "trigger_start_p99"),
		formatValue(ra.totalOf("not_run"), "count"), formatValue(ra.totalOf("sessions_idle"), "count"),
		formatValue(ra.totalOf("sessions_load"), "count"))
	rj, err := w.jobs(ctx, env, c, host, sz)
	if merr := c.saveMetrics(ctx, "W8-tockd-metrics.txt"); merr != nil && err == nil {
		err = fmt.Errorf("save tockd metrics: %w", merr)
	}
	results := []Result{ra}
	if rj != nil {
		results = append(results, *rj)
	}
	if err != nil {
		return results, err
	}
	return results, c.alive()
}

// agentsRep measures one idle window and one load window.
func (w w8) agentsRep(ctx context.Context, env *Env, c *tockCluster, host *proc, r *Result, tag string, sz w8Sizes) error {
	env.statusf(tag, "idle for %s", sz.idle)
	s0 := w.snap(env, c, host)
	if err := sleepCtx(ctx, sz.idle); err != nil {
		return err
	}
	s1 := w.snap(env, c, host)
	r.add("tockd_cpu_idle", "tockd CPU, idle", "%", "", s1.pct(s0, s1.tockd.CPU-s0.tockd.CPU))
	r.add("sessions_idle", "agent sessions opened by tockd, idle", "count", "0", float64(s1.sessions-s0.sessions))
	r.add("tockd_rss_idle", "tockd RSS, idle", "MB", "", mb(s1.tockd.RSS))
	r.add("host_cpu_idle", "agent host CPU, idle", "%", "", s1.pct(s0, s1.host.CPU-s0.host.CPU))
	r.add("pg_cpu_idle", "PostgreSQL CPU, idle", "%", "", s1.pct(s0, s1.pg-s0.pg))

	env.statusf(tag, "%d triggers/s for %s", sz.rate, sz.load)
	n := int(float64(sz.rate) * sz.load.Seconds())
	interval := time.Second / time.Duration(sz.rate)
	type trig struct {
		sent time.Time
		id   string
		err  error
	}
	trigs := make([]trig, n)
	var wg sync.WaitGroup
	l0 := w.snap(env, c, host)
	var lastSend time.Time
	for i := range n {
		if wait := time.Until(l0.at.Add(time.Duration(i) * interval)); wait > 0 {
			if err := sleepCtx(ctx, wait); err != nil {
				wg.Wait()
				return err
			}
		}
		lastSend = time.Now()
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			t := &trigs[i]
			t.sent = time.Now()
			resp, err := c.jobs.TriggerJob(cctx, &tockv1.TriggerJobRequest{Name: w8LoadJob})
			if err != nil {
				t.err = err
				return
			}
			t.id = resp.GetExecution().GetId()
		})
	}
	wg.Wait()
	// The rate the calls were started at: n calls over n intervals.
	sentFor := lastSend.Sub(l0.at) + interval
	want := map[string]int{}
	failed := 0
	for i, t := range trigs {
		if t.err != nil {
			failed++
			continue
		}
		want[t.id] = i
	}
	starts := map[string]int64{}
	deadline := time.Now().Add(60 * time.Second)
	for len(starts) < len(want) && time.Now().Before(deadline) {
		recs, err := c.records.records(ctx, recordFilter{Prefix: w8LoadJob, StartFrom: l0.at})
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if _, ok := want[rec.ID]; ok {
				if _, seen := starts[rec.ID]; !seen {
					starts[rec.ID] = rec.Start
				}
			}
		}
		if len(starts) < len(want) {
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	l1 := w.snap(env, c, host)
	var lat []float64
	for id, i := range want {
		if st, ok := starts[id]; ok {
			lat = append(lat, ms(time.Unix(0, st).Sub(trigs[i].sent)))
		}
	}
	r.add("trigger_rate", "triggers sent", "/s", fmt.Sprintf("%d/s", sz.rate), float64(n)/sentFor.Seconds())
	r.addDist("trigger_start", "trigger→start under load", "ms", [3]string{}, lat)
	r.add("tockd_cpu_load", "tockd CPU, load", "%", "", l1.pct(l0, l1.tockd.CPU-l0.tockd.CPU))
	r.add("tockd_cpu_per_exec", "tockd CPU per execution, load", "ms", "", ms(l1.tockd.CPU-l0.tockd.CPU)/float64(max(len(starts), 1)))
	r.add("tockd_rss_load", "tockd RSS, after load", "MB", "", mb(l1.tockd.RSS))
	r.add("tockd_hwm", "tockd peak RSS", "MB", "", mb(l1.tockd.HWM))
	r.add("host_cpu_load", "agent host CPU, load", "%", "", l1.pct(l0, l1.host.CPU-l0.host.CPU))
	r.add("pg_cpu_load", "PostgreSQL CPU, load", "%", "", l1.pct(l0, l1.pg-l0.pg))
	r.add("not_run", "not run within 60 s", "count", "0", float64(len(want)-len(starts)))
	r.add("sessions_load", "agent sessions opened by tockd, load", "count", "0", float64(l1.sessions-l0.sessions))
	connected, err := c.connectedHosted(ctx)
	if err != nil {
		return err
	}
	r.add("connected", "agents in session at the end", "count", strconv.Itoa(sz.agents), float64(connected))
	r.add("trigger_errors", "trigger errors", "count", "0", float64(failed))
	s := summarize(lat)
	env.statusf(tag, "trigger→start p50 %s p99 %s; tockd CPU idle %s, load %s; RSS %s",
		formatValue(s.P50, "ms"), formatValue(s.P99, "ms"), formatValue(s1.pct(s0, s1.tockd.CPU-s0.tockd.CPU), "%"),
		formatValue(l1.pct(l0, l1.tockd.CPU-l0.tockd.CPU), "%"), formatValue(mb(l1.tockd.RSS), "MB"))
	return c.alive()
}

// w8Median formats the median of r's metric k, "–" when r has no such metric.
func w8Median(r *Result, k string) string {
	m := r.find(k)
	if m == nil {
		return "–"
	}
	return formatValue(r.medianOf(k), m.Unit)
}

// w8Snap is the CPU and memory of the processes at one instant, and how many agent sessions
// tockd had opened by then.
type w8Snap struct {
	at          time.Time
	tockd, host procUsage
	pg          time.Duration
	sessions    int
}

func (w8) snap(env *Env, c *tockCluster, host *proc) w8Snap {
	return w8Snap{at: time.Now(), tockd: usageOf(c.tockd.pid()), host: usageOf(host.pid()), pg: pgCPU(env.PG.proc.pid()),
		sessions: countLines(c.tockd.log, w8SessionOpened)}
}

// pgCPU returns the CPU time PostgreSQL has used: the postmaster's, its live backends' and
// workers', and that of the children it has reaped (cutime and cstime of the postmaster), so
// that a backend or autovacuum worker that exits during a window does not take its CPU time
// with it.
func pgCPU(postmaster int) time.Duration {
	total := treeCPU(postmaster)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(postmaster) + "/stat")
	if err != nil {
		return total
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return total
	}
	// Fields after the command: f[0] is field 3 (state); cutime and cstime are fields 16 and 17.
	f := strings.Fields(s[i+1:])
	if len(f) > 14 {
		cu, _ := strconv.ParseInt(f[13], 10, 64)
		cs, _ := strconv.ParseInt(f[14], 10, 64)
		total += time.Duration(cu+cs) * time.Second / clockTicks
	}
	return total
}

// w8SessionOpened is how tockd's JSON log says it opens a session with an agent it owns.
const w8SessionOpened = `"msg":"agent owned; opening session"`

// countLines returns how many lines of the file at path contain s; 0 when it cannot be read.
func countLines(path, s string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte(s))
}

// pct returns cpu as a percentage of one core over the time from s0 to s.
func (s w8Snap) pct(s0 w8Snap, cpu time.Duration) float64 {
	return 100 * cpu.Seconds() / s.at.Sub(s0.at).Seconds()
}

// w8Period returns the period (seconds) of the job schedules: the shortest period a cron
// expression can repeat on (minutes dividing an hour, hours dividing a day) at which n jobs
// fire at most w8FiresPerMinute times a minute, or a day.
func w8Period(n int) int {
	for _, p := range []int{60, 120, 180, 240, 300, 360, 600, 720, 900, 1200, 1800, 3600,
		7200, 10800, 14400, 21600, 28800, 43200} {
		if n*60/p <= w8FiresPerMinute {
			return p
		}
	}
	return 86400
}

// w8Cron returns the cron expression (with seconds, UTC) that fires every period seconds at
// offset seconds past each multiple of the period since midnight.
func w8Cron(offset, period int) string {
	sec, min, hour := offset%60, (offset/60)%60, offset/3600
	switch {
	case period == 60:
		return fmt.Sprintf("%d * * * * *", sec)
	case period < 3600:
		return fmt.Sprintf("%d %d-59/%d * * * *", sec, min, period/60)
	case period == 3600:
		return fmt.Sprintf("%d %d * * * *", sec, min)
	case period < 86400:
		return fmt.Sprintf("%d %d %d-23/%d * * *", sec, min, hour, period/3600)
	}
	return fmt.Sprintf("%d %d %d * * *", sec, min, hour)
}

// w8Offset is job i's offset in the period: the n jobs spread evenly over it.
func w8Offset(i, n, period int) int { return int(int64(i) * int64(period) / int64(n)) }

// jobs registers sz.jobs cron jobs and measures windows in which some of them fire.
func (w w8) jobs(ctx context.Context, env *Env, c *tockCluster, host *proc, sz w8Sizes) (*Result, error) {
	period := w8Period(sz.jobs)
	perOffset := make([]int, period)
	for i := range sz.jobs {
		perOffset[w8Offset(i, sz.jobs, period)]++
	}
	tag := "W8 jobs"
	env.statusf(tag, "registering %d jobs through CreateJob, %d calls in flight; each fires once every %s",
		sz.jobs, w8Parallel, time.Duration(period)*time.Second)
	t0 := time.Now()
	err := forEach(ctx, env, tag, "creating jobs", sz.jobs, w8Parallel, func(ctx context.Context, i int) error {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		j := noopJob(fmt.Sprintf("%s%07d", w8JobPrefix, i), w8Cron(w8Offset(i, sz.jobs, period), period))
		if _, err := c.jobs.CreateJob(cctx, &tockv1.CreateJobRequest{Job: j}); err != nil {
			return fmt.Errorf("create job %s: %w", j.GetName(), err)
		}
		return nil
	})
	created := time.Since(t0)
	if err != nil {
		return nil, err
	}
	env.statusf(tag, "%d jobs created in %s (%.0f/s)", sz.jobs, created.Round(time.Second), float64(sz.jobs)/created.Seconds())
	if err := sleepCtx(ctx, sz.settle); err != nil {
		return nil, err
	}

	r := &Result{Workload: "W8", Case: "jobs", Title: fmt.Sprintf(
		"%d registered cron jobs on one replica with %d agents: windows of %s", sz.jobs, sz.agents, sz.window)}
	for rep := range quickReps(env) {
		rtag := env.repTag("W8", "jobs", rep)
		// Windows start on a whole second, so that a fire's nominal time is in one window.
		start := time.Now().Truncate(time.Second).Add(time.Second)
		if err := sleepCtx(ctx, time.Until(start)); err != nil {
			return r, err
		}
		env.statusf(rtag, "measuring for %s", sz.window)
		s0 := w.snap(env, c, host)
		q0, err := w.claimStats(ctx, env, c.db)
		if err != nil {
			return r, err
		}
		end := start.Add(sz.window)
		if err := sleepCtx(ctx, time.Until(end)); err != nil {
			return r, err
		}
		s1 := w.snap(env, c, host)
		q1, err := w.claimStats(ctx, env, c.db)
		if err != nil {
			return r, err
		}
		if err := sleepCtx(ctx, sz.grace); err != nil {
			return r, err
		}
		expected := 0
		midnight := start.UTC().Truncate(24 * time.Hour)
		for t := start; t.Before(end); t = t.Add(time.Second) {
			expected += perOffset[int(t.Sub(midnight)/time.Second)%period]
		}
		recs, err := c.records.records(ctx, recordFilter{Prefix: w8JobPrefix, From: start, To: end.Add(-time.Nanosecond)})
		if err != nil {
			return r, err
		}
		type fire struct {
			job     string
			nominal int64
		}
		seen := map[fire]int{}
		var late []float64
		early := 0
		for _, rec := range recs {
			k := fire{rec.Job, rec.Nominal}
			seen[k]++
			if seen[k] > 1 {
				continue
			}
			d := time.Duration(rec.Start - rec.Nominal)
			if d < 0 {
				early++
			}
			late = append(late, ms(d))
		}
		dups := len(recs) - len(seen)
		r.add("fires", "fires expected in the window", "count", "", float64(expected))
		r.add("fires_per_min", "fires per minute", "", "", float64(expected)/sz.window.Minutes())
		r.addDist("lateness", "fire lateness (handler start − nominal)", "ms", [3]string{}, late)
		r.add("missed", "not run within "+sz.grace.String()+" of the window", "count", "0", float64(expected-len(seen)))
		r.add("duplicate", "run twice", "count", "0", float64(dups))
		r.add("early", "started before nominal time", "count", "0", float64(early))
		if q1.calls > q0.calls {
			r.add("claim_mean", "due-jobs claim query, mean time", "ms", "", (q1.ms-q0.ms)/(q1.calls-q0.calls))
			r.add("claim_rate", "due-jobs claim queries", "/s", "", (q1.calls-q0.calls)/s1.at.Sub(s0.at).Seconds())
		}
		r.add("sessions", "agent sessions opened by tockd", "count", "0", float64(s1.sessions-s0.sessions))
		r.add("tockd_cpu", "tockd CPU", "%", "", s1.pct(s0, s1.tockd.CPU-s0.tockd.CPU))
		r.add("tockd_rss", "tockd RSS", "MB", "", mb(s1.tockd.RSS))
		r.add("tockd_hwm", "tockd peak RSS", "MB", "", mb(s1.tockd.HWM))
		r.add("pg_cpu", "PostgreSQL CPU", "%", "", s1.pct(s0, s1.pg-s0.pg))
		r.add("host_cpu", "agent host CPU", "%", "", s1.pct(s0, s1.host.CPU-s0.host.CPU))
		connected, err := c.connectedHosted(ctx)
		if err != nil {
			return r, err
		}
		r.add("connected", "agents in session at the end", "count", strconv.Itoa(sz.agents), float64(connected))
		s := summarize(late)
		env.statusf(rtag, "%d fires expected, %d ran; lateness p50 %s p99 %s; tockd CPU %s, RSS %s; PostgreSQL CPU %s",
			expected, len(seen), formatValue(s.P50, "ms"), formatValue(s.P99, "ms"),
			formatValue(s1.pct(s0, s1.tockd.CPU-s0.tockd.CPU), "%"), formatValue(mb(s1.tockd.RSS), "MB"),
			formatValue(s1.pct(s0, s1.pg-s0.pg), "%"))
		if err := c.alive(); err != nil {
			return r, err
		}
	}
	med := func(k string) string { return w8Median(r, k) }
	r.Summary = fmt.Sprintf("%d jobs (created at %.0f/s): tockd RSS %s, CPU %s, PostgreSQL CPU %s; fire lateness p50 %s, p99 %s; "+
		"due-jobs claim query %s; missed %s, duplicate %s; sessions reopened %s", sz.jobs, float64(sz.jobs)/created.Seconds(),
		med("tockd_rss"), med("tockd_cpu"), med("pg_cpu"), med("lateness_p50"), med("lateness_p99"), med("claim_mean"),
		formatValue(r.totalOf("missed"), "count"), formatValue(r.totalOf("duplicate"), "count"), formatValue(r.totalOf("sessions"), "count"))
	r.Notes = append(r.Notes,
		fmt.Sprintf("%d jobs created through the public gRPC API (CreateJob, %d calls in flight) in %s: %.0f jobs/s; "+
			"1,000,000 would take %s at that rate.", sz.jobs, w8Parallel, created.Round(time.Second),
			float64(sz.jobs)/created.Seconds(), (time.Duration(float64(created)*1e6/float64(sz.jobs))).Round(time.Second)),
		fmt.Sprintf("Schedules: job i fires every %s at offset i×%s/%d past each multiple of the period since midnight "+
			"UTC (a cron expression with seconds, such as %q), so %.0f fire per minute, evenly. The windows start %s "+
			"after the last job was created; fires are those whose nominal time falls in the window, read from the handler "+
			"service's notes %s after it.", time.Duration(period)*time.Second, time.Duration(period)*time.Second, sz.jobs,
			w8Cron(w8Offset(sz.jobs/2, sz.jobs, period), period), float64(sz.jobs)*60/float64(period), sz.settle, sz.grace),
		"tockd has no metric for its scheduling loop: the loop's cost shows as tockd's and PostgreSQL's CPU with nothing "+
			"but these fires to do, its timeliness as the fires' lateness, and the time PostgreSQL spends on its due-jobs "+
			"claim query (SELECT … FROM jobs WHERE next_fire_at <= … ORDER BY next_fire_at LIMIT …, from pg_stat_statements).")
	return r, nil
}

// w8Claims is the due-jobs claim query's calls and total execution time (ms).
type w8Claims struct{ calls, ms float64 }

// claimStats reads the scheduler's due-jobs claim query from pg_stat_statements; zeros when
// the extension is not loaded.
func (w8) claimStats(ctx context.Context, env *Env, db string) (w8Claims, error) {
	var q w8Claims
	if !env.PG.statements {
		return q, nil
	}
	conn, err := pgx.Connect(ctx, env.PG.url("postgres"))
	if err != nil {
		return q, fmt.Errorf("connect to read pg_stat_statements: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `SELECT COALESCE(sum(s.calls), 0)::float8, COALESCE(sum(s.total_exec_time), 0)::float8
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = $1 AND s.query LIKE '%FROM jobs%next_fire_at <=%ORDER BY next_fire_at%'`, db).Scan(&q.calls, &q.ms)
	if err != nil {
		return q, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	return q, nil
}
