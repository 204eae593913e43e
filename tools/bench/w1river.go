package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// The River side of W1: River driven as a library from this process, on a database of its own
// of the run's PostgreSQL server, with a worker that does nothing.
const (
	// w1RiverDB is the database of River's side.
	w1RiverDB = "river_w1"
	// w1RiverWorkers is River's MaxWorkers for the default queue: BENCHMARKS.md's measurement
	// found fewer workers cap the drain at MaxWorkers per fetch cooldown (100 ms).
	w1RiverWorkers = 5000
	// w1RiverInsertBatch is how many jobs one InsertManyFast call inserts.
	w1RiverInsertBatch = 50000
)

// riverNoopArgs are the arguments of River's no-op job.
type riverNoopArgs struct{}

func (riverNoopArgs) Kind() string { return "noop" }

// riverNoopWorker counts the jobs it ran and does nothing else.
type riverNoopWorker struct {
	river.WorkerDefaults[riverNoopArgs]
	ran *atomic.Int64
}

func (w *riverNoopWorker) Work(context.Context, *river.Job[riverNoopArgs]) error {
	w.ran.Add(1)
	return nil
}

// riverVersions returns the versions of River's modules this program is built with.
func riverVersions() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "River (version unknown)"
	}
	var out []string
	for _, m := range info.Deps {
		if m.Path == "github.com/riverqueue/river" || m.Path == "github.com/riverqueue/river/riverdriver/riverpgxv5" {
			out = append(out, m.Path+" "+m.Version)
		}
	}
	if len(out) == 0 {
		return "River (version unknown)"
	}
	return strings.Join(out, ", ")
}

// runRiver measures one repetition of River's drain: a fresh database with River's schema,
// n no-op jobs inserted with InsertManyFast before the client starts, then the time from
// Start until every job is completed in the database.
func (w w1) runRiver(ctx context.Context, env *Env, tag string, n int) (d w1Drain, err error) {
	env.statusf(tag, "River: creating database %s and River's schema (rivermigrate)", w1RiverDB)
	if err := env.PG.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+w1RiverDB+" WITH (FORCE)", "CREATE DATABASE "+w1RiverDB); err != nil {
		return d, fmt.Errorf("create River's database: %w", err)
	}
	defer func() {
		if derr := env.PG.exec(context.WithoutCancel(ctx), "postgres", "DROP DATABASE IF EXISTS "+w1RiverDB+" WITH (FORCE)"); derr != nil && err == nil {
			err = fmt.Errorf("drop River's database: %w", derr)
		}
	}()
	pool, err := pgxpool.New(ctx, env.PG.url(w1RiverDB))
	if err != nil {
		return d, fmt.Errorf("connect River's pool: %w", err)
	}
	poolOpen := true
	closePool := func() {
		if poolOpen {
			pool.Close()
			poolOpen = false
		}
	}
	defer closePool()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return d, fmt.Errorf("river migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return d, fmt.Errorf("river migrate: %w", err)
	}

	logFile, err := os.OpenFile(filepath.Join(env.Dir, "river.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return d, err
	}
	defer logFile.Close()
	var ran atomic.Int64
	workers := river.NewWorkers()
	river.AddWorker(workers, &riverNoopWorker{ran: &ran})
	client, err := river.NewClient(driver, &river.Config{
		Logger:  slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: w1RiverWorkers}},
		Workers: workers,
	})
	if err != nil {
		return d, fmt.Errorf("river client: %w", err)
	}

	fillStart := time.Now()
	batch := make([]river.InsertManyParams, 0, w1RiverInsertBatch)
	for done := 0; done < n; {
		batch = batch[:0]
		for range min(w1RiverInsertBatch, n-done) {
			batch = append(batch, river.InsertManyParams{Args: riverNoopArgs{}})
		}
		if _, err := client.InsertManyFast(ctx, batch); err != nil {
			return d, fmt.Errorf("river InsertManyFast: %w", err)
		}
		done += len(batch)
		env.statusf(tag, "River: inserted %d/%d jobs", done, n)
	}
	d.fillRate = float64(n) / time.Since(fillStart).Seconds()
	if err := w.settle(ctx, env, w1RiverDB, "river_job"); err != nil {
		return d, err
	}

	obs, err := w.observe(ctx, env, w1RiverDB, `SELECT count(*) FROM (SELECT 1 FROM river_job
		WHERE state IN ('available', 'pending', 'running', 'retryable', 'scheduled') LIMIT 1000) s`,
		`SELECT count(*) FROM river_job WHERE state = 'completed'`)
	if err != nil {
		return d, err
	}
	defer obs.close(ctx)
	if err := w.resetStatements(ctx, env, w1RiverDB); err != nil {
		return d, err
	}
	before, err := w.counters(ctx, env, w1RiverDB)
	if err != nil {
		return d, err
	}
	smp, err := w.sample(ctx, env, w1RiverDB)
	if err != nil {
		return d, err
	}
	defer smp.stop()
	self0, pg0 := usageOf(os.Getpid()), treeCPU(env.PG.proc.pid())

	env.statusf(tag, "River: starting the client (MaxWorkers %d)", w1RiverWorkers)
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return d, fmt.Errorf("river start: %w", err)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return client.Stop(sctx)
	}
	defer func() { _ = stop() }()
	d.drain, d.finished, err = obs.waitDrained(ctx, tag, "River", n, start, func() (int64, error) { return ran.Load(), nil }, nil)
	if err != nil {
		return d, err
	}
	self1, pg1 := usageOf(os.Getpid()), treeCPU(env.PG.proc.pid())
	d.cpu = map[string]time.Duration{"bench": self1.CPU - self0.CPU, "pg": pg1 - pg0}

	smp.stop()
	if err := stop(); err != nil {
		return d, fmt.Errorf("river stop: %w", err)
	}
	closePool()
	if d.txs, d.rollbacks, d.statements, err = w.delta(ctx, env, w1RiverDB, obs, before); err != nil {
		return d, err
	}
	if err := w.writeDiagnostics(ctx, env, "river", w1RiverDB, smp); err != nil {
		return d, err
	}
	if d.notDone, err = w.count(ctx, env, w1RiverDB, `SELECT count(*) FROM river_job WHERE state <> 'completed'`); err != nil {
		return d, fmt.Errorf("count River's unfinished jobs: %w", err)
	}
	d.twice = max(0, int(ran.Load())-n)
	return d, nil
}
