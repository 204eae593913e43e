package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// healthQuery asks Consul for the entries of one service: a blocking query when index is not
// zero.
type healthQuery func(ctx context.Context, index uint64, wait time.Duration) ([]*api.ServiceEntry, *api.QueryMeta, error)

// watchConfig tunes a watch.
type watchConfig struct {
	service       string
	wait          time.Duration // how long a blocking query waits for a change
	recoveryGrace time.Duration // how long after an outage members are only added
	backoffMin    time.Duration
	backoffMax    time.Duration
	minInterval   time.Duration // the least time between two queries
	logger        *slog.Logger
}

// watch follows the live members of one Consul service with blocking queries, and keeps the
// last set it knew: its reader never waits for Consul.
//
//   - Each answer carries Consul's index; the next query blocks until the index moves past
//     it (or wait passes), so an idle watch costs one request per wait.
//   - A failed query keeps the known set, waits a jittered, growing backoff (never a hot
//     loop), and is retried without an index: a Consul that restarted has lower indexes, and
//     a blocking query on an index it has not reached would wait the whole wait for nothing.
//   - After an outage, and whenever the index goes backwards (Consul came back without its
//     state, as a -dev agent does), members that do not show are kept for recoveryGrace, so
//     that they have time to register again: a restart of Consul drops no agent and no
//     replica. Members that show as not live still go at once outside that window.
type watch[T any] struct {
	cfg    watchConfig
	query  healthQuery
	decode func(entries []*api.ServiceEntry) map[string]T

	mu           sync.Mutex // protects the fields below
	known        map[string]T
	synced       bool
	lastErr      error
	failing      bool
	recoverUntil time.Time
}

func newWatch[T any](cfg watchConfig, query healthQuery, decode func([]*api.ServiceEntry) map[string]T) *watch[T] {
	return &watch[T]{cfg: cfg, query: query, decode: decode, known: map[string]T{}}
}

// errNotSynced is returned by members before the first answer from Consul.
var errNotSynced = errors.New("no answer from Consul yet")

// members returns the known set. Before Consul first answered it returns an error: the caller
// keeps what it had.
func (w *watch[T]) members() ([]T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.synced {
		if w.lastErr != nil {
			return nil, fmt.Errorf("consul service %s: %w: %w", w.cfg.service, errNotSynced, w.lastErr)
		}
		return nil, fmt.Errorf("consul service %s: %w", w.cfg.service, errNotSynced)
	}
	out := make([]T, 0, len(w.known))
	for _, k := range slices.Sorted(maps.Keys(w.known)) {
		out = append(out, w.known[k])
	}
	return out, nil
}

// run queries until ctx is done.
func (w *watch[T]) run(ctx context.Context) {
	var (
		index, highest uint64
		backoff        = w.cfg.backoffMin
		last           time.Time
	)
	for ctx.Err() == nil {
		// Never two queries closer than minInterval, whatever Consul answers.
		if wait := w.cfg.minInterval - time.Since(last); wait > 0 && !sleepCtx(ctx, wait) {
			return
		}
		last = time.Now()
		entries, meta, err := w.query(ctx, index, w.queryWait())
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.failed(err)
			index = 0
			// Full jitter over a growing backoff.
			if !sleepCtx(ctx, time.Duration(rand.Int64N(int64(backoff)))+w.cfg.backoffMin/2) {
				return
			}
			backoff = min(2*backoff, w.cfg.backoffMax)
			continue
		}
		backoff = w.cfg.backoffMin
		reset := meta.LastIndex < highest
		w.update(w.decode(entries), reset)
		highest = max(highest, meta.LastIndex)
		if reset {
			highest = meta.LastIndex
		}
		index = max(meta.LastIndex, 1)
	}
}

// queryWait is how long the next blocking query may wait: no longer than the recovery window,
// so that members still missing at its end are dropped then.
func (w *watch[T]) queryWait() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	wait := w.cfg.wait
	if until := time.Until(w.recoverUntil); until > 0 {
		wait = min(wait, until+100*time.Millisecond)
	}
	return wait
}

// failed records a failed query; the known set stays.
func (w *watch[T]) failed(err error) {
	w.mu.Lock()
	first := !w.failing
	w.failing, w.lastErr = true, err
	n := len(w.known)
	w.mu.Unlock()
	if first {
		w.cfg.logger.Warn("consul unreachable; keeping the known set", "service", w.cfg.service, "known", n, "err", err)
	}
}

// update applies an answer. In the recovery window after an outage or a reset, members that
// do not show are kept.
func (w *watch[T]) update(live map[string]T, reset bool) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	recovered := w.failing
	if (recovered || reset) && w.synced {
		w.recoverUntil = now.Add(w.cfg.recoveryGrace)
		w.cfg.logger.Info("consul answers again; keeping members that have not registered again yet",
			"service", w.cfg.service, "known", len(w.known), "showing", len(live), "for", w.cfg.recoveryGrace.String())
	}
	w.failing, w.lastErr = false, nil
	if now.Before(w.recoverUntil) {
		merged := maps.Clone(w.known)
		maps.Copy(merged, live)
		live = merged
	}
	w.known = live
	w.synced = true
}

// sleepCtx waits d or until ctx is done, and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
