package retention_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tockhq/tock/controlplane/retention"
	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeStore hands out rows to prune from fixed backlogs and records each call's limit.
type fakeStore struct {
	execs, fires, regs int
	limits             []int
	fail               error
}

func (f *fakeStore) take(backlog *int, limit int) (int, error) {
	f.limits = append(f.limits, limit)
	if f.fail != nil {
		return 0, f.fail
	}
	n := min(*backlog, limit)
	*backlog -= n
	return n, nil
}

func (f *fakeStore) PruneExecutions(_ context.Context, _ time.Duration, limit int) (int, error) {
	return f.take(&f.execs, limit)
}

func (f *fakeStore) PruneFires(_ context.Context, _ time.Duration, limit int) (int, error) {
	return f.take(&f.fires, limit)
}

func (f *fakeStore) PruneRegistrations(context.Context, time.Duration) (int, error) {
	n := f.regs
	f.regs = 0
	return n, nil
}

func TestRoundBatches(t *testing.T) {
	t.Parallel()
	f := &fakeStore{execs: 2500, fires: 1000, regs: 2}
	p := retention.New(retention.Config{Retention: time.Hour, BatchSize: 1000}, f)
	res, err := p.Round(t.Context())
	require.NoError(t, err)
	require.Equal(t, retention.Result{Executions: 2500, Fires: 1000, Registrations: 2}, res)
	// Executions: 1000, 1000, 500 (short: stop). Fires: 1000, then 0 (short: stop).
	require.Equal(t, []int{1000, 1000, 1000, 1000, 1000}, f.limits, "never more than one batch per transaction")
}

func TestRoundBoundedAndStopsOnError(t *testing.T) {
	t.Parallel()
	f := &fakeStore{execs: 10_000}
	p := retention.New(retention.Config{Retention: time.Hour, BatchSize: 100, MaxBatches: 3}, f)
	res, err := p.Round(t.Context())
	require.NoError(t, err)
	require.Equal(t, 300, res.Executions, "a large backlog is worked off over several rounds")

	f.fail = errors.New("database unreachable")
	_, err = p.Round(t.Context())
	require.ErrorContains(t, err, "prune executions")
	require.ErrorContains(t, err, "database unreachable")
}

func TestDisabled(t *testing.T) {
	t.Parallel()
	f := &fakeStore{execs: 10}
	p := retention.New(retention.Config{}, f)
	p.Start(t.Context())
	p.Stop()
	res, err := p.Round(t.Context())
	require.NoError(t, err)
	require.Zero(t, res)
	require.Empty(t, f.limits)
}

// countingStore counts the rounds a Pruner runs against a real store.
type countingStore struct {
	retention.Store
	rounds atomic.Int64
}

func (c *countingStore) PruneRegistrations(ctx context.Context, d time.Duration) (int, error) {
	defer c.rounds.Add(1)
	return c.Store.PruneRegistrations(ctx, d)
}

func TestPrunerLoopOnSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tock.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	job, err := st.CreateJob(ctx, store.Job{Name: "old", Handler: "echo"})
	require.NoError(t, err)
	for i := range 5 {
		nominal := time.Now().Add(-time.Duration(i+1) * time.Minute) // one fire each
		_, err := st.CreateExecution(ctx, store.Execution{Job: job.Name, Handler: "echo", NominalTime: nominal})
		require.NoError(t, err)
	}
	claimed, err := st.ClaimExecutions(ctx, store.ClaimParams{
		Handlers: []string{"echo"}, Limit: 3, Lease: time.Minute,
		Pick: func(c []store.Execution) []store.Assignment {
			out := make([]store.Assignment, len(c))
			for i, e := range c {
				out[i] = store.Assignment{ExecutionID: e.ID, AgentID: "a"}
			}
			return out
		},
	})
	require.NoError(t, err)
	var done []store.Completion
	for _, e := range claimed {
		done = append(done, store.Completion{ExecRef: store.ExecRef{ID: e.ID, Epoch: e.LeaseEpoch}, State: store.ExecSucceeded})
	}
	_, err = st.CompleteExecutions(ctx, done, nil)
	require.NoError(t, err)

	cs := &countingStore{Store: st}
	p := retention.New(retention.Config{Retention: time.Nanosecond, Interval: time.Millisecond, BatchSize: 2}, cs)
	p.Start(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for cs.rounds.Load() < 2 {
		require.True(t, time.Now().Before(deadline), "the pruner ran no round in 10s")
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
	p.Stop()
	p.Stop() // idempotent

	left, err := st.ListExecutions(ctx, store.ListExecutionsParams{Job: "old"})
	require.NoError(t, err)
	require.Len(t, left, 2, "the three finished executions are pruned, the pending ones kept")
	for _, e := range left {
		require.Equal(t, store.ExecPending, e.State)
	}
}
