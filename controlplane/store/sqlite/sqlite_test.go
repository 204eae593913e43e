package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/sqlite"
	"github.com/tockhq/tock/controlplane/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is real time moved forward by Advance.
type clock struct {
	offset atomic.Int64 // nanoseconds added to time.Now
}

func (c *clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// open opens a store in path, closed when t ends.
func open(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T) (store.Store, func(time.Duration)) {
			c := new(clock)
			st := open(t, filepath.Join(t.TempDir(), "tock.db"), sqlite.WithClock(c.Now))
			return st, c.Advance
		},
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("CreatesDirectory", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "a", "b", "tock.db")
		st := open(t, path)
		_, err := st.ListJobs(t.Context(), store.ListJobsParams{})
		require.NoError(t, err)
	})

	t.Run("RejectsNonFilePaths", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"", ":memory:", "file:tock.db", "tock.db?mode=ro"} {
			_, err := sqlite.Open(t.Context(), path)
			require.Error(t, err, path)
		}
	})

	t.Run("WAL", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "tock.db")
		open(t, path)
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		defer db.Close()
		var mode string
		require.NoError(t, db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode))
		require.Equal(t, "wal", mode)
	})

	t.Run("ReopenKeepsDataAndMigratesOnce", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "tock.db")
		ctx := t.Context()

		st, err := sqlite.Open(ctx, path)
		require.NoError(t, err)
		job, err := st.CreateJob(ctx, store.Job{Name: "kept", Handler: "svc/h", Payload: []byte("x")})
		require.NoError(t, err)
		exec, err := st.CreateExecution(ctx, store.Execution{Job: "kept", Handler: "svc/h"})
		require.NoError(t, err)
		require.NoError(t, st.Close())

		versions := func() []int64 {
			db, err := sql.Open("sqlite", path)
			require.NoError(t, err)
			defer db.Close()
			rows, err := db.QueryContext(ctx, "SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY id")
			require.NoError(t, err)
			defer rows.Close()
			var out []int64
			for rows.Next() {
				var v int64
				require.NoError(t, rows.Scan(&v))
				out = append(out, v)
			}
			require.NoError(t, rows.Err())
			return out
		}
		applied := versions()
		require.NotEmpty(t, applied)

		for range 2 {
			again := open(t, path)
			got, err := again.GetJob(ctx, "kept")
			require.NoError(t, err)
			require.Equal(t, job, got)
			gotExec, err := again.GetExecution(ctx, exec.ID)
			require.NoError(t, err)
			require.Equal(t, exec, gotExec)
			require.NoError(t, again.Close())
		}
		require.Equal(t, applied, versions(), "reopening applies no migration twice")
	})
}

// TestConcurrentWriters hammers one file from many goroutines, through one store and through
// two stores on the same file (as two processes would), and expects no SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                    string
		stores, workers, rounds int
	}{
		{"OneStore", 1, 8, 12},
		{"TwoStores", 2, 4, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "tock.db")
			var stores []*sqlite.Store
			for range tc.stores {
				stores = append(stores, open(t, path))
			}
			ctx := t.Context()

			var wg sync.WaitGroup
			n := tc.stores * tc.workers
			errs := make(chan error, n)
			for w := range n {
				st := stores[w%tc.stores]
				wg.Go(func() {
					if err := writeRounds(ctx, st, fmt.Sprintf("w%d", w), tc.rounds); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}

			execs, err := stores[0].ListExecutions(ctx, store.ListExecutionsParams{State: store.ExecSucceeded, Limit: 10_000})
			require.NoError(t, err)
			require.Len(t, execs, n*tc.rounds)
		})
	}
}

// writeRounds runs one worker's writes: a job, then executions created, claimed, started and
// completed one by one, with reads in between.
func writeRounds(ctx context.Context, st *sqlite.Store, name string, rounds int) error {
	job, err := st.CreateJob(ctx, store.Job{Name: name, Handler: "svc/" + name})
	if err != nil {
		return err
	}
	for range rounds {
		if _, err := st.CreateExecution(ctx, store.Execution{Job: job.Name, Handler: job.Handler}); err != nil {
			return err
		}
		claimed, err := st.ClaimExecutions(ctx, store.ClaimParams{
			Handlers: []string{job.Handler},
			Limit:    1,
			Lease:    time.Minute,
			Pick: func(c []store.Execution) []store.Assignment {
				return []store.Assignment{{ExecutionID: c[0].ID, AgentID: name}}
			},
		})
		if err != nil {
			return err
		}
		if len(claimed) != 1 {
			return fmt.Errorf("%s claimed %d executions", name, len(claimed))
		}
		ref := store.ExecRef{ID: claimed[0].ID, Epoch: claimed[0].LeaseEpoch}
		if err := st.MarkStarted(ctx, []store.ExecRef{ref}, time.Time{}); err != nil {
			return err
		}
		if _, err := st.InFlight(ctx); err != nil {
			return err
		}
		out, err := st.CompleteExecutions(ctx, []store.Completion{{ExecRef: ref, State: store.ExecSucceeded}}, nil)
		if err != nil {
			return err
		}
		if !out[0].Applied {
			return fmt.Errorf("%s: result not applied: %s", name, out[0].Reason)
		}
		if _, err := st.ListExecutions(ctx, store.ListExecutionsParams{Job: job.Name, Limit: 5}); err != nil {
			return err
		}
	}
	return nil
}

// TestPanickingCallback checks that a callback that panics inside a transaction does not keep
// the write connection.
func TestPanickingCallback(t *testing.T) {
	t.Parallel()
	st := open(t, filepath.Join(t.TempDir(), "tock.db"))
	ctx := t.Context()
	_, err := st.CreateJob(ctx, store.Job{Name: "due", Handler: "svc/h", NextFireAt: time.Now().Add(-time.Second)})
	require.NoError(t, err)

	require.Panics(t, func() {
		_, _ = st.FireDueJobs(ctx, store.FireDueParams{Limit: 1, Plan: func(store.DueJob, time.Time) store.FirePlan {
			panic("plan bug")
		}})
	})
	_, err = st.CreateJob(ctx, store.Job{Name: "after", Handler: "svc/h"})
	require.NoError(t, err)
	fires, err := st.ListFires(ctx, store.ListFiresParams{Job: "due"})
	require.NoError(t, err)
	require.Empty(t, fires, "the panicking transaction was rolled back")
}
