package pg

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
)

// TestInTxRetries provokes write skew between a transaction of the store and another one, so
// that PostgreSQL aborts the store's with a serialization failure, and checks that inTx runs it
// again in a new transaction: when the failure comes at COMMIT (which a savepoint-based retry
// would not see) and when it comes from a statement (after which the transaction is doomed).
func TestInTxRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// otherFirst has the other transaction write and commit before the store's writes,
		// so that the store's UPDATE fails; otherwise its COMMIT fails.
		otherFirst bool
	}{
		{"AtCommit", false},
		{"AtStatement", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, err := Open(ctx, pgtest.NewDatabase(t), WithoutMigrations())
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			require.Same(t, postgresDialect, s.dialect)
			_, err = s.pool.Exec(ctx, `CREATE TABLE skew (id INT PRIMARY KEY, v INT NOT NULL)`)
			require.NoError(t, err)
			_, err = s.pool.Exec(ctx, `INSERT INTO skew VALUES (1, 0), (2, 0)`)
			require.NoError(t, err)

			other, err := s.pool.BeginTx(ctx, txOptions)
			require.NoError(t, err)
			defer func() { _ = other.Rollback(context.Background()) }()
			var sum int
			require.NoError(t, other.QueryRow(ctx, `SELECT sum(v) FROM skew`).Scan(&sum))
			otherCommits := func() {
				_, err := other.Exec(ctx, `UPDATE skew SET v = v + 1 WHERE id = 1`)
				require.NoError(t, err)
				require.NoError(t, other.Commit(ctx))
			}

			calls := 0
			err = s.inTx(ctx, func(tx pgx.Tx, _ time.Time) error {
				calls++
				var sum int
				if err := tx.QueryRow(ctx, `SELECT sum(v) FROM skew`).Scan(&sum); err != nil {
					return err
				}
				if calls == 1 && tc.otherFirst {
					otherCommits()
				}
				if _, err := tx.Exec(ctx, `UPDATE skew SET v = $1 WHERE id = 2`, sum+1); err != nil {
					return err
				}
				if calls == 1 && !tc.otherFirst {
					otherCommits()
				}
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, 2, calls, "the transaction ran again")
			require.Equal(t, uint64(1), s.TxRetries())

			var v1, v2 int
			require.NoError(t, s.pool.QueryRow(ctx, `SELECT
				(SELECT v FROM skew WHERE id = 1), (SELECT v FROM skew WHERE id = 2)`).Scan(&v1, &v2))
			require.Equal(t, 1, v1)
			require.Equal(t, 2, v2, "the retry saw the other transaction's write, and committed")
		})
	}
}

// TestPanickingCallback checks that a callback that panics inside a transaction rolls it back
// and gives its connection back to the pool.
func TestPanickingCallback(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(pgtest.NewDatabase(t))
	require.NoError(t, err)
	q := u.Query()
	q.Set("pool_max_conns", "1")
	u.RawQuery = q.Encode()
	s, err := Open(ctx, u.String())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	now, err := s.Now(ctx)
	require.NoError(t, err)
	_, err = s.CreateJob(ctx, store.Job{Name: "due", Handler: "svc/h", NextFireAt: now.Add(-time.Second)})
	require.NoError(t, err)

	require.Panics(t, func() {
		_, _ = s.FireDueJobs(ctx, store.FireDueParams{Limit: 1, Plan: func(store.DueJob, time.Time) store.FirePlan {
			panic("plan bug")
		}})
	})
	_, err = s.CreateJob(ctx, store.Job{Name: "after", Handler: "svc/h"})
	require.NoError(t, err, "the one connection is back in the pool")
	fires, err := s.ListFires(ctx, store.ListFiresParams{Job: "due"})
	require.NoError(t, err)
	require.Empty(t, fires, "the panicking transaction was rolled back")
	job, err := s.GetJob(ctx, "due")
	require.NoError(t, err)
	require.Equal(t, now.Add(-time.Second), job.NextFireAt)
}

// TestRetryGivesUpAsContended checks that a transaction that fails with serialization
// failures every time is tried maxAttempts times and then reported as store.ErrContended, so
// that callers can make it smaller; other errors are returned at once.
func TestRetryGivesUpAsContended(t *testing.T) {
	t.Parallel()
	s := &Store{}
	calls := 0
	err := s.retry(t.Context(), func() error {
		calls++
		return &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
	})
	require.ErrorIs(t, err, store.ErrContended)
	require.ErrorContains(t, err, "could not serialize access")
	require.Equal(t, maxAttempts, calls)
	require.Equal(t, uint64(maxAttempts-1), s.retries.Load())

	calls = 0
	err = s.retry(t.Context(), func() error {
		calls++
		return &pgconn.PgError{Code: "23505", Message: "duplicate key"}
	})
	require.NotErrorIs(t, err, store.ErrContended)
	require.Equal(t, 1, calls)
}
