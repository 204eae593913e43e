// Package retention prunes old history: executions that ended and fires recorded longer ago
// than the retention, and registrations of replicas and agents that lapsed long ago.
//
// Every replica runs a Pruner; they need no coordination. A round deletes in bounded batches
// (BatchSize rows per transaction, the next batch only while full ones come back), so that no
// transaction holds many locks or grows large, on CockroachDB in particular; rounds are
// jittered so that replicas started together do not prune at the same moment. The store
// keeps every fire and execution of a fire that still has a live attempt.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Store is what a Pruner needs of the store; store.Store has it.
type Store interface {
	PruneExecutions(ctx context.Context, olderThan time.Duration, limit int) (int, error)
	PruneFires(ctx context.Context, olderThan time.Duration, limit int) (int, error)
	PruneRegistrations(ctx context.Context, expiredFor time.Duration) (int, error)
}

// Config tunes a Pruner.
type Config struct {
	// Retention is how long executions (from when they ended) and fires (from when they
	// were recorded) are kept. Zero or less disables pruning. Default: none; set it.
	Retention time.Duration
	// Interval is the mean time between rounds; each wait is jittered by ±Interval/4.
	// Default 1m.
	Interval time.Duration
	// BatchSize is the most rows one transaction deletes. Default 1000.
	BatchSize int
	// MaxBatches bounds the transactions of one round per kind of row, so that a large
	// backlog is worked off over several rounds. Default 100.
	MaxBatches int
	// RegistrationGrace is how long after lapsing a registration is deleted. Default 1h.
	RegistrationGrace time.Duration
	// Registerer receives the pruner's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger receives the pruner's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.MaxBatches <= 0 {
		c.MaxBatches = 100
	}
	if c.RegistrationGrace <= 0 {
		c.RegistrationGrace = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Result counts what one round deleted.
type Result struct {
	Executions, Fires, Registrations int
}

// Pruner runs pruning rounds in the background.
type Pruner struct {
	cfg    Config
	store  Store
	pruned *prometheus.CounterVec

	mu     sync.Mutex // protects cancel and done
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Pruner over st.
func New(cfg Config, st Store) *Pruner {
	cfg = cfg.withDefaults()
	p := &Pruner{
		cfg:   cfg,
		store: st,
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tock_pruned_rows_total",
			Help: "Rows deleted by retention, by kind: executions, fires, registrations.",
		}, []string{"kind"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(p.pruned)
	}
	return p
}

// Start runs rounds in the background until Stop or ctx ends. With no retention it does
// nothing.
func (p *Pruner) Start(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil || p.cfg.Retention <= 0 {
		return
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		p.run(ctx)
	}()
}

// Stop ends the loop and waits for it. It is idempotent.
func (p *Pruner) Stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (p *Pruner) run(ctx context.Context) {
	for {
		t := time.NewTimer(p.jittered())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		res, err := p.Round(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.cfg.Logger.Warn("prune history", "err", err, "executions", res.Executions, "fires", res.Fires)
		case res != Result{}:
			p.cfg.Logger.Info("pruned history", "retention", p.cfg.Retention.String(),
				"executions", res.Executions, "fires", res.Fires, "registrations", res.Registrations)
		}
	}
}

// jittered returns Interval ± Interval/4, at random.
func (p *Pruner) jittered() time.Duration {
	quarter := int64(p.cfg.Interval / 4)
	return p.cfg.Interval - time.Duration(quarter) + time.Duration(rand.Int64N(2*quarter+1))
}

// Round runs one pruning round: executions, then fires, each in batches of BatchSize until
// a batch comes back short (or MaxBatches ran), then lapsed registrations. It returns what it
// deleted, also when it stops on an error.
func (p *Pruner) Round(ctx context.Context) (Result, error) {
	var res Result
	if p.cfg.Retention <= 0 {
		return res, nil
	}
	var err error
	if res.Executions, err = p.batches(ctx, "executions", p.store.PruneExecutions); err != nil {
		return res, err
	}
	if res.Fires, err = p.batches(ctx, "fires", p.store.PruneFires); err != nil {
		return res, err
	}
	res.Registrations, err = p.store.PruneRegistrations(ctx, p.cfg.RegistrationGrace)
	if err != nil {
		return res, fmt.Errorf("prune registrations: %w", err)
	}
	p.pruned.WithLabelValues("registrations").Add(float64(res.Registrations))
	return res, nil
}

// batches runs prune until a batch deletes fewer than BatchSize rows.
func (p *Pruner) batches(ctx context.Context, kind string, prune func(context.Context, time.Duration, int) (int, error)) (int, error) {
	total := 0
	for range p.cfg.MaxBatches {
		n, err := prune(ctx, p.cfg.Retention, p.cfg.BatchSize)
		total += n
		p.pruned.WithLabelValues(kind).Add(float64(n))
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", kind, err)
		}
		if n < p.cfg.BatchSize {
			break
		}
	}
	return total, nil
}
