package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// w1 measures a burn-down: N no-op executions are pending before anything runs them, then
// Tock's agents (through the Go SDK) and, on the same server in the same run, River's client
// work them off. The figure is how many executions per second end committed in the
// database, with the transactions and SQL statements each one cost.
type w1 struct{}

func (w1) ID() string { return "W1" }
func (w1) Name() string {
	return fmt.Sprintf("burn-down: drain %s pending no-op executions, Tock against River (%s, one repetition, with -quick)",
		groupThousands(w1Size(false)), groupThousands(w1Size(true)))
}

const (
	// w1Job is the manual-only job whose executions Tock drains.
	w1Job = "w1-drain"
	// w1Agents is how many agents drain Tock's backlog, each with capacity w1Capacity.
	w1Agents   = 1
	w1Capacity = 1024
	// w1FillChunk is how many executions one INSERT of Tock's backlog adds.
	w1FillChunk = 100000
	// w1Observer is the role that polls the databases during a drain: its statements are
	// left out of the counts, and its transactions subtracted.
	w1Observer = "bench_observer"
	// w1Poll is how often the drain's end is polled.
	w1Poll = 50 * time.Millisecond
)

// w1Size is the backlog of one repetition. BENCHMARKS.md asks for 1,000,000; at the 1–2k
// executions/s Tock drains today on 2 cores, one repetition of that would take 10 minutes or
// more, so both systems drain 200,000 (BENCHMARKS.md's own River measurement used 200,000).
func w1Size(quick bool) int {
	if quick {
		return 5000
	}
	return 200000
}

// w1Drain is what one drain measured.
type w1Drain struct {
	drain      time.Duration // from the agents' or the client's start until all committed
	fillRate   float64       // executions or jobs put in the backlog per second
	txs        float64       // transactions (commits and rollbacks) in the database over the drain
	rollbacks  float64       // of which rolled back
	statements float64       // SQL statements over the drain (NaN without pg_stat_statements)
	cpu        map[string]time.Duration
	finished   int     // finished (SUCCEEDED, completed) when the drain ended: n unless it timed out
	notDone    int     // neither succeeded (completed) nor lost at the end
	lost       int     // Tock: executions whose lease expired (retried as new executions)
	retries    float64 // Tock: store transactions retried (tock_store_tx_retries_total)
	twice      int     // handler runs beyond one per execution
}

func (w w1) Run(ctx context.Context, env *Env) ([]Result, error) {
	n := w1Size(env.Quick)
	if err := env.PG.exec(ctx, "postgres",
		`DO $$BEGIN CREATE ROLE `+w1Observer+` LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$`,
		`GRANT pg_read_all_data TO `+w1Observer); err != nil {
		return nil, fmt.Errorf("create the observer role: %w", err)
	}
	r := Result{Workload: "W1", Case: "drain", Title: fmt.Sprintf("Burn-down: drain of %s pending no-op executions, Tock against River", groupThousands(n))}
	reps := env.Reps
	if env.Quick {
		reps = 1 // a repetition has a fixed cost of several seconds (processes, databases, VACUUM)
	}
	for rep := range reps {
		tag := fmt.Sprintf("W1 rep %d/%d", rep+1, reps)
		t, err := w.runTock(ctx, env, tag, n)
		if err != nil {
			return nil, fmt.Errorf("tock: %w", err)
		}
		rv, err := w.runRiver(ctx, env, tag, n)
		if err != nil {
			return nil, fmt.Errorf("river: %w", err)
		}
		tr, rr := float64(t.finished)/t.drain.Seconds(), float64(rv.finished)/rv.drain.Seconds()
		per := func(v float64) float64 { return v / float64(n) }
		us := func(d time.Duration) float64 { return per(float64(d) / float64(time.Microsecond)) }
		r.add("tock_rate", "Tock drain rate", "/s", "", tr)
		r.add("river_rate", "River drain rate", "/s", "", rr)
		r.add("ratio", "Tock ÷ River drain rate", "x", "≥ 1.25×", tr/rr)
		r.add("tock_drain", "Tock drain time", "s", "", t.drain.Seconds())
		r.add("river_drain", "River drain time", "s", "", rv.drain.Seconds())
		r.add("tock_tx", "Tock transactions per execution", "", "", per(t.txs))
		r.add("river_tx", "River transactions per job", "", "", per(rv.txs))
		r.add("tock_stmts", "Tock SQL statements per execution", "", "", per(t.statements))
		r.add("river_stmts", "River SQL statements per job", "", "", per(rv.statements))
		r.add("tock_rollbacks", "Tock rollbacks", "count", "", t.rollbacks)
		r.add("river_rollbacks", "River rollbacks", "count", "", rv.rollbacks)
		r.add("tock_cpu_tockd", "Tock: tockd CPU per execution", "µs", "", us(t.cpu["tockd"]))
		r.add("tock_cpu_agent", "Tock: agent CPU per execution", "µs", "", us(t.cpu["agent"]))
		r.add("tock_cpu_handler", "Tock: handler service CPU per execution", "µs", "", us(t.cpu["handler"]))
		r.add("tock_cpu_pg", "Tock: PostgreSQL CPU per execution", "µs", "", us(t.cpu["pg"]))
		r.add("river_cpu_client", "River: client process CPU per job", "µs", "", us(rv.cpu["bench"]))
		r.add("river_cpu_pg", "River: PostgreSQL CPU per job", "µs", "", us(rv.cpu["pg"]))
		r.add("tock_unfinished", "Tock executions not succeeded at the deadline", "count", "0", float64(n-t.finished))
		r.add("river_unfinished", "River jobs not completed at the deadline", "count", "0", float64(n-rv.finished))
		r.add("tock_retries", "Tock store transactions retried", "count", "", t.retries)
		r.add("tock_not_done", "Tock executions neither succeeded nor lost", "count", "0", float64(t.notDone))
		r.add("tock_lost", "Tock executions lost (lease expired, retried)", "count", "0", float64(t.lost))
		r.add("tock_twice", "Tock handler runs beyond one per execution", "count", "0", float64(t.twice))
		r.add("river_not_done", "River jobs not completed", "count", "0", float64(rv.notDone))
		r.add("river_twice", "River worker runs beyond one per job", "count", "0", float64(rv.twice))
		r.add("tock_fill", "Tock backlog fill rate", "/s", "", t.fillRate)
		r.add("river_fill", "River backlog fill rate (InsertManyFast)", "/s", "", rv.fillRate)
		env.statusf(tag, "Tock %s in %s, River %s in %s: %.2f×; transactions per execution Tock %.3g, River %.3g; statements Tock %.3g, River %.3g",
			formatValue(tr, "/s"), t.drain.Round(time.Millisecond), formatValue(rr, "/s"), rv.drain.Round(time.Millisecond), tr/rr,
			per(t.txs), per(rv.txs), per(t.statements), per(rv.statements))
	}
	stmtNote := "SQL statements: pg_stat_statements (loaded with shared_preload_libraries, track=top) calls in the database over " +
		"the drain, without transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) and without the observer's polls."
	if !env.PG.statements {
		stmtNote = "SQL statements: not measured, pg_stat_statements is not installed beside this PostgreSQL server (–)."
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("Each repetition drains %s executions with Tock, then %s jobs with River, each on a fresh database of the "+
			"same PostgreSQL server; the backlog is complete, VACUUM (ANALYZE)d and CHECKPOINTed before the drain starts. "+
			"BENCHMARKS.md asks for 1,000,000: at the rate Tock drains today one repetition of that would take over ten "+
			"minutes on 2 cores, so both drain %s (-quick: %s, one repetition).",
			groupThousands(n), groupThousands(n), groupThousands(w1Size(false)), groupThousands(w1Size(true))),
		fmt.Sprintf("Tock: tockd (production mode, one replica) with the bench handler service and no agent; one manual-only job "+
			"`%s` and one TriggerJob call (the API writes that execution); the other %s executions are copies of its row made "+
			"by set-based `INSERT INTO executions … SELECT … FROM generate_series` in chunks of %s (every column as the store "+
			"wrote it, except a new UUIDv7-shaped id with the template's time prefix and a new trace id), because %s TriggerJob "+
			"calls, one commit each, would take minutes. Then %d tock-agent(s) with --capacity %d start; the drain runs from the "+
			"agents' start until no execution is pending, assigned or running in the database, polled every %s. Every "+
			"execution must end SUCCEEDED; one whose lease expired is LOST and retried as a new execution, which the drain "+
			"waits for. tockd's /metrics at the end are in W1-tockd-metrics.txt; the statements that took the most time and "+
			"samples of pg_stat_activity (every 100 ms) during each system's last drain are in W1-tock-postgres.txt and "+
			"W1-river-postgres.txt.", w1Job, groupThousands(n-1), groupThousands(w1FillChunk), groupThousands(n), w1Agents, w1Capacity, w1Poll),
		fmt.Sprintf("River: %s with riverpgxv5 on a pgxpool with default settings (tockd's pool has them too), "+
			"rivermigrate for the schema; InsertManyFast (COPY, batches of %s) before the client starts; MaxWorkers %d on the "+
			"default queue, default fetch cooldown and completer; a worker that returns nil. The drain runs from Start until "+
			"no job is available, pending, running, retryable or scheduled (polled every %s); all must be completed.",
			riverVersions(), groupThousands(w1RiverInsertBatch), w1RiverWorkers, w1Poll),
		"Drain rate: executions (jobs) finished ÷ the drain's time. A drain not over a minute plus 2 ms per execution after "+
			"its start is cut off there: its rate counts what had finished, and \"not succeeded at the deadline\" the rest.",
		"Transactions: xact_commit + xact_rollback of the database (pg_stat_database) from the drain's start until every "+
			"process using it has exited (Tock: agents, tockd and the handler service stopped after the drain, so their "+
			"shutdown is counted; River: client stopped, pool closed), less the observer's own polls. "+stmtNote,
		"CPU per execution: process CPU time (utime + stime) over the drain; for River the client runs in this program, "+
			"so its figure includes the observer's polling. PostgreSQL's is the postmaster and all backends, both systems' "+
			"databases alike (only one drains at a time).")
	med := func(k string) string { return formatValue(r.medianOf(k), r.find(k).Unit) }
	total := func(k string) string { return formatValue(r.totalOf(k), "count") }
	r.Summary = fmt.Sprintf("Tock %s, River %s: %s (target ≥ 1.25×); per execution Tock %s transactions, %s statements; "+
		"River %s transactions, %s statements; in all repetitions: Tock not succeeded %s, lost %s, run twice %s; River not completed %s",
		med("tock_rate"), med("river_rate"), med("ratio"), med("tock_tx"), med("tock_stmts"), med("river_tx"),
		med("river_stmts"), total("tock_not_done"), total("tock_lost"), total("tock_twice"), total("river_not_done"))
	return []Result{r}, nil
}

// runTock measures one repetition of Tock's drain.
func (w w1) runTock(ctx context.Context, env *Env, tag string, n int) (d w1Drain, err error) {
	c, err := env.startTock(ctx, clusterConfig{Name: "w1", NoAgent: true})
	if err != nil {
		return d, err
	}
	defer func() {
		if cerr := c.close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if _, err := c.jobs.CreateJob(ctx, &tockv1.CreateJobRequest{Job: noopJob(w1Job, "")}); err != nil {
		return d, fmt.Errorf("create job: %w", err)
	}
	fillStart := time.Now()
	resp, err := c.jobs.TriggerJob(ctx, &tockv1.TriggerJobRequest{Name: w1Job})
	if err != nil {
		return d, fmt.Errorf("trigger job: %w", err)
	}
	if err := w.fillTock(ctx, env, tag, c.db, resp.GetExecution().GetId(), n); err != nil {
		return d, err
	}
	d.fillRate = float64(n) / time.Since(fillStart).Seconds()
	if err := w.settle(ctx, env, c.db, "executions"); err != nil {
		return d, err
	}

	obs, err := w.observe(ctx, env, c.db, `SELECT count(*) FROM (SELECT 1 FROM executions
		WHERE state IN ('pending', 'assigned', 'running') LIMIT 1000) s`,
		`SELECT count(*) FROM executions WHERE state = 'succeeded'`)
	if err != nil {
		return d, err
	}
	defer obs.close(ctx)
	if err := w.resetStatements(ctx, env, c.db); err != nil {
		return d, err
	}
	before, err := w.counters(ctx, env, c.db)
	if err != nil {
		return d, err
	}
	smp, err := w.sample(ctx, env, c.db)
	if err != nil {
		return d, err
	}
	defer smp.stop()
	tockd0, handler0, pg0 := usageOf(c.tockd.pid()), usageOf(c.handler.pid()), treeCPU(env.PG.proc.pid())
	retries0 := c.metricValue(ctx, "tock_store_tx_retries_total")

	start := time.Now()
	var agents []*proc
	for i := range w1Agents {
		p, err := c.startAgent(ctx, fmt.Sprintf("bench-agent-%d", i+1), w1Capacity)
		if err != nil {
			return d, err
		}
		agents = append(agents, p)
	}
	runs := func() (int64, error) {
		n, err := c.records.count(ctx, recordFilter{Prefix: w1Job})
		return int64(n), err
	}
	if d.drain, d.finished, err = obs.waitDrained(ctx, tag, "Tock", n, start, runs, c.alive); err != nil {
		return d, err
	}
	ran, err := runs()
	if err != nil {
		return d, err
	}
	d.twice = max(0, int(ran)-n)
	d.cpu = map[string]time.Duration{
		"tockd":   usageOf(c.tockd.pid()).CPU - tockd0.CPU,
		"handler": usageOf(c.handler.pid()).CPU - handler0.CPU,
		"pg":      treeCPU(env.PG.proc.pid()) - pg0,
	}
	for _, p := range agents {
		d.cpu["agent"] += usageOf(p.pid()).CPU
	}
	smp.stop()
	d.retries = c.metricValue(ctx, "tock_store_tx_retries_total") - retries0
	if err := c.saveMetrics(ctx, "W1-tockd-metrics.txt"); err != nil {
		env.statusf(tag, "could not save tockd metrics: %v", err)
	}
	if err := c.stopProcesses(); err != nil {
		return d, fmt.Errorf("stop the cluster: %w", err)
	}
	if d.txs, d.rollbacks, d.statements, err = w.delta(ctx, env, c.db, obs, before); err != nil {
		return d, err
	}
	if err := w.writeDiagnostics(ctx, env, "tock", c.db, smp); err != nil {
		return d, err
	}
	if d.notDone, err = w.count(ctx, env, c.db, `SELECT count(*) FROM executions WHERE state NOT IN ('succeeded', 'lost')`); err != nil {
		return d, fmt.Errorf("count Tock's unfinished executions: %w", err)
	}
	if d.lost, err = w.count(ctx, env, c.db, `SELECT count(*) FROM executions WHERE state = 'lost'`); err != nil {
		return d, fmt.Errorf("count Tock's lost executions: %w", err)
	}
	return d, nil
}

// fillTock adds n−1 copies of the execution template (written by TriggerJob) to the
// database, each with a new id and trace id, so that n executions are pending.
func (w1) fillTock(ctx context.Context, env *Env, tag, db, template string, n int) error {
	if len(template) != 36 {
		return fmt.Errorf("execution id %q is not a UUID", template)
	}
	conn, err := pgx.Connect(ctx, env.PG.url(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'executions' ORDER BY ordinal_position`)
	if err != nil {
		return fmt.Errorf("read the columns of executions: %w", err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read the columns of executions: %w", err)
	}
	const traceID = `md5(t.id || '/' || g)`
	var names, values []string
	for _, col := range cols {
		names = append(names, pgx.Identifier{col}.Sanitize())
		switch col {
		case "id":
			values = append(values, `left(t.id, 19) || '8000-' || lpad(to_hex(g), 12, '0')`)
		case "trace_id":
			values = append(values, `CASE WHEN t.trace_id = '' THEN '' ELSE `+traceID+` END`)
		case "trace_context":
			values = append(values, `CASE WHEN t.trace_id = '' THEN t.trace_context ELSE replace(t.trace_context, t.trace_id, `+traceID+`) END`)
		default:
			values = append(values, "t."+pgx.Identifier{col}.Sanitize())
		}
	}
	stmt := `INSERT INTO executions (` + strings.Join(names, ", ") + `) SELECT ` + strings.Join(values, ", ") +
		` FROM executions t, generate_series($2::bigint, $3::bigint) g WHERE t.id = $1`
	for from := 1; from < n; from += w1FillChunk {
		to := min(from+w1FillChunk, n) - 1
		if _, err := conn.Exec(ctx, stmt, template, from, to); err != nil {
			return fmt.Errorf("copy execution %s: %w", template, err)
		}
		env.statusf(tag, "Tock: %d/%d executions pending", to+1, n)
	}
	return nil
}

// settle prepares a filled backlog for its drain, the same for Tock and River: VACUUM
// (ANALYZE) of its table, a CHECKPOINT, and a pause for the backends' statistics to be
// reported.
func (w1) settle(ctx context.Context, env *Env, db, table string) error {
	if err := env.PG.exec(ctx, db, "VACUUM (ANALYZE) "+table, "CHECKPOINT"); err != nil {
		return fmt.Errorf("vacuum and checkpoint: %w", err)
	}
	return sleepCtx(ctx, 1500*time.Millisecond)
}

// w1Counters are the database's counters at a moment.
type w1Counters struct {
	db         dbStats
	statements float64
}

// counters reads the transactions and statements of database db.
func (w1) counters(ctx context.Context, env *Env, db string) (w1Counters, error) {
	s, err := env.PG.stats(ctx, db)
	if err != nil {
		return w1Counters{}, err
	}
	st, err := env.PG.statementCount(ctx, db, w1Observer)
	if err != nil {
		return w1Counters{}, err
	}
	return w1Counters{db: s, statements: st}, nil
}

// delta closes the observer, waits until no backend uses db (an exiting backend reports its
// statistics), and returns the transactions, rollbacks and statements since before, less the
// observer's.
func (w w1) delta(ctx context.Context, env *Env, db string, obs *w1Observe, before w1Counters) (txs, rollbacks, statements float64, err error) {
	obs.close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := w.count(ctx, env, "postgres", fmt.Sprintf(`SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'`, db))
		if err != nil {
			return 0, 0, 0, err
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("%d backends still use %s 30 s after the drain", left, db)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return 0, 0, 0, err
		}
	}
	if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
		return 0, 0, 0, err
	}
	after, err := w.counters(ctx, env, db)
	if err != nil {
		return 0, 0, 0, err
	}
	commits := after.db.Commits - before.db.Commits - float64(obs.queries)
	rollbacks = after.db.Rollbacks - before.db.Rollbacks
	return commits + rollbacks, rollbacks, after.statements - before.statements, nil
}

// count runs a query returning one number on database db.
func (w1) count(ctx context.Context, env *Env, db, query string) (int, error) {
	conn, err := pgx.Connect(ctx, env.PG.url(db))
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	if err := conn.QueryRow(ctx, query).Scan(&n); err != nil {
		return 0, err
	}
	return n, nil
}

// w1Observe polls a database as the observer role for the end of a drain.
type w1Observe struct {
	env      *Env
	conn     *pgx.Conn
	live     string // returns how many are unfinished, at most 1000
	finished string // returns how many are finished
	queries  int    // statements run, each its own transaction
}

// observe connects to db as the observer; live counts unfinished work (up to 1000), finished
// the work done.
func (w1) observe(ctx context.Context, env *Env, db, live, finished string) (*w1Observe, error) {
	conn, err := pgx.Connect(ctx, env.PG.urlAs(w1Observer, db))
	if err != nil {
		return nil, fmt.Errorf("connect as %s: %w", w1Observer, err)
	}
	return &w1Observe{env: env, conn: conn, live: live, finished: finished}, nil
}

// close closes the observer's connection; closing it twice does nothing.
func (o *w1Observe) close(ctx context.Context) {
	if o.conn != nil {
		_ = o.conn.Close(context.WithoutCancel(ctx))
		o.conn = nil
	}
}

// waitDrained polls until nothing is unfinished and returns the time since start and n. runs
// says how many handler runs there were so far (for the status lines); alive, when not nil,
// fails when a process of the system has exited. At the deadline (a minute plus 2 ms per
// execution, a drain at 500/s) it gives up and returns how many were finished then.
func (o *w1Observe) waitDrained(ctx context.Context, tag, who string, n int, start time.Time,
	runs func() (int64, error), alive func() error) (time.Duration, int, error) {
	deadline := start.Add(time.Minute + time.Duration(n)*2*time.Millisecond)
	lastStatus := time.Now()
	for {
		var live int
		o.queries++
		if err := o.conn.QueryRow(ctx, o.live).Scan(&live); err != nil {
			return 0, 0, fmt.Errorf("poll the drain: %w", err)
		}
		now := time.Now()
		if live == 0 {
			return now.Sub(start), n, nil
		}
		if now.After(deadline) {
			var finished int
			o.queries++
			if err := o.conn.QueryRow(ctx, o.finished).Scan(&finished); err != nil {
				return 0, 0, fmt.Errorf("count the finished: %w", err)
			}
			o.env.statusf(tag, "%s: gave up after %s with %d of %d finished", who, now.Sub(start).Round(time.Second), finished, n)
			return now.Sub(start), finished, nil
		}
		if now.Sub(lastStatus) >= time.Second {
			ran, err := runs()
			if err != nil {
				return 0, 0, err
			}
			more := ""
			if live >= 1000 {
				more = " or more"
			}
			o.env.statusf(tag, "%s: %d/%d run, %d%s unfinished (%s)", who, ran, n, live, more, now.Sub(start).Round(time.Second))
			lastStatus = now
		}
		if alive != nil {
			if err := alive(); err != nil {
				return 0, 0, err
			}
		}
		if err := sleepCtx(ctx, w1Poll); err != nil {
			return 0, 0, err
		}
	}
}

// groupThousands renders n with commas between groups of three digits.
func groupThousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// w1Sampler samples pg_stat_activity of a database during a drain: what its backends were
// doing (state, wait event, statement), as counts of samples.
type w1Sampler struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // protects samples, counts
	samples int
	counts  map[string]int
}

// sample starts sampling database db every 100 ms until stop.
func (w1) sample(ctx context.Context, env *Env, db string) (*w1Sampler, error) {
	conn, err := pgx.Connect(ctx, env.PG.url("postgres"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &w1Sampler{cancel: cancel, done: make(chan struct{}), counts: make(map[string]int)}
	go func() {
		defer close(s.done)
		defer conn.Close(context.WithoutCancel(ctx))
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			rows, err := conn.Query(ctx, `SELECT COALESCE(state, ''), COALESCE(wait_event_type || ':' || wait_event, 'on CPU'),
					left(regexp_replace(query, '\s+', ' ', 'g'), 90)
				FROM pg_stat_activity WHERE datname = $1 AND usename <> $2 AND backend_type = 'client backend'`, db, w1Observer)
			if err == nil {
				keys, _ := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
					var state, wait, query string
					err := r.Scan(&state, &wait, &query)
					if state != "active" {
						wait = "-"
					}
					return fmt.Sprintf("%-20s %-28s %s", state, wait, query), err
				})
				s.mu.Lock()
				s.samples++
				for _, k := range keys {
					s.counts[k]++
				}
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s, nil
}

// stop ends the sampling; stopping twice does nothing.
func (s *w1Sampler) stop() {
	s.cancel()
	<-s.done
}

// report renders the samples, most frequent first: how many backends, on average over the
// samples, were in each state.
func (s *w1Sampler) report() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	type row struct {
		key string
		n   int
	}
	var rows []row
	for k, n := range s.counts {
		rows = append(rows, row{k, n})
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.n, a.n) })
	var b strings.Builder
	fmt.Fprintf(&b, "pg_stat_activity, %d samples every 100 ms; backends per sample, by state, wait event and statement\n\n", s.samples)
	fmt.Fprintf(&b, "%8s  %-20s %-28s %s\n", "backends", "state", "wait event", "statement")
	for _, r := range rows {
		fmt.Fprintf(&b, "%8.2f  %s\n", float64(r.n)/float64(max(s.samples, 1)), r.key)
	}
	return b.String()
}

// resetStatements empties pg_stat_statements for database db, so that what it holds after
// the drain is the drain's.
func (w1) resetStatements(ctx context.Context, env *Env, db string) error {
	if !env.PG.statements {
		return nil
	}
	return env.PG.exec(ctx, "postgres",
		fmt.Sprintf(`SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = '%s'), 0)`, db))
}

// writeDiagnostics writes what the database did during the drain into the output folder as
// W1-<system>-postgres.txt: the statements that took the most time, then the activity samples.
func (w1) writeDiagnostics(ctx context.Context, env *Env, system, db string, smp *w1Sampler) error {
	var b strings.Builder
	if env.PG.statements {
		conn, err := pgx.Connect(ctx, env.PG.url("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		rows, err := conn.Query(ctx, `SELECT calls, rows, total_exec_time, left(regexp_replace(query, '\s+', ' ', 'g'), 200)
			FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
			WHERE d.datname = $1 AND s.userid NOT IN (SELECT oid FROM pg_roles WHERE rolname = $2)
			ORDER BY total_exec_time DESC LIMIT 25`, db, w1Observer)
		if err != nil {
			return fmt.Errorf("read pg_stat_statements: %w", err)
		}
		fmt.Fprintf(&b, "pg_stat_statements of %s during the drain, by total execution time\n\n%10s %10s %12s  %s\n", system, "calls", "rows", "total ms", "statement")
		var (
			calls, nrows int64
			total        float64
			query        string
		)
		if _, err := pgx.ForEachRow(rows, []any{&calls, &nrows, &total, &query}, func() error {
			fmt.Fprintf(&b, "%10d %10d %12.1f  %s\n", calls, nrows, total, query)
			return nil
		}); err != nil {
			return fmt.Errorf("read pg_stat_statements: %w", err)
		}
	}
	if smp != nil {
		b.WriteString("\n" + smp.report())
	}
	return os.WriteFile(filepath.Join(env.Out, "W1-"+system+"-postgres.txt"), []byte(b.String()), 0o644)
}
