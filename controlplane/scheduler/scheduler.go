package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/tockhq/tock/controlplane/store"
)

// Config tunes a Scheduler.
type Config struct {
	// PollInterval is how often the store is asked for due jobs when nothing wakes the
	// scheduler sooner. Default 200ms.
	PollInterval time.Duration
	// Horizon is how far ahead of their nominal time fires are claimed. It must exceed
	// PollInterval so that fires are claimed before they are due. Default 1s.
	Horizon time.Duration
	// BatchSize is the most jobs claimed per transaction. Default 1000.
	BatchSize int
	// Plan tunes how due jobs are planned.
	Plan PlanConfig
	// Logger receives the scheduler's logs. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider makes the fire spans that start each execution's trace. Default: none
	// (executions get no trace context).
	TracerProvider trace.TracerProvider
	// Registerer receives the scheduler's metrics (tock_fires_total). Default: none.
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.PollInterval <= 0 {
		c.PollInterval = 200 * time.Millisecond
	}
	if c.Horizon <= c.PollInterval {
		c.Horizon = max(time.Second, 2*c.PollInterval)
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// FireFunc is told of the fires the scheduler recorded, so that the dispatcher can start
// their executions at their nominal time.
type FireFunc func(fires []store.Fire)

// Scheduler is the loop that fires due jobs.
type Scheduler struct {
	cfg    Config
	store  store.Store
	onFire FireFunc
	wake   chan struct{}
	obs    *observer

	mu     sync.Mutex // protects cancel and done
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Scheduler that records fires in st and reports them to onFire.
func New(cfg Config, st store.Store, onFire FireFunc) *Scheduler {
	cfg = cfg.withDefaults()
	return &Scheduler{cfg: cfg, store: st, onFire: onFire, wake: make(chan struct{}, 1),
		obs: newObserver(cfg.TracerProvider, cfg.Registerer)}
}

// Start runs the loop in the background until Stop or ctx ends.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
}

// Stop ends the loop and waits for it. It is idempotent.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Wake makes the loop look for due jobs now, for example after a job was created.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) run(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.PollInterval)
	defer ticker.Stop()
	for {
		// Keep claiming while full batches come back: the scheduler is behind.
		for {
			n, err := s.Tick(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.cfg.Logger.Error("fire due jobs", "err", err)
				break
			}
			if n < s.cfg.BatchSize {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.wake:
		}
	}
}

// Tick claims one batch of due jobs and records their fires. It returns how many jobs it
// planned fires for.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	// Plan may run more than once per job when the store retries its transaction, so count
	// distinct jobs.
	claimed := make(map[string]struct{})
	traced := s.obs.begin(ctx)
	fires, err := s.store.FireDueJobs(ctx, store.FireDueParams{
		Limit:   s.cfg.BatchSize,
		Horizon: s.cfg.Horizon,
		Plan: func(due store.DueJob, now time.Time) store.FirePlan {
			plan := Plan(s.cfg.Plan, due, now, s.cfg.Horizon)
			if len(plan.Fires) > 0 {
				// A job planned at its nominal time (see Plan) is claimed within the
				// horizon but waits; it does not count, or a batch of them would spin.
				claimed[due.Name] = struct{}{}
			}
			traced.planned(now, &plan)
			return plan
		},
	})
	traced.end(fires, err)
	if err != nil {
		return 0, err
	}
	if len(fires) > 0 && s.onFire != nil {
		s.onFire(fires)
	}
	return len(claimed), nil
}
