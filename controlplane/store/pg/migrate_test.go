package pg_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/pg"
	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
)

// waitForLockWaiter polls, through conn, until a session of conn's database waits for a lock.
func waitForLockWaiter(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	require.NoError(t, lockWaiter(t.Context(), conn))
}

// lockWaiter is waitForLockWaiter for goroutines other than the test's: it returns an error
// rather than failing the test.
func lockWaiter(ctx context.Context, conn *pgx.Conn) error {
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil || waiting > 0 {
			return err
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return errors.New("no session waited for a lock within 30s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestConcurrentMigrations starts several replicas on a fresh database at once: all of them
// open, and each migration is applied once.
func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	const replicas = 4
	stores := make([]*pg.Store, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = pg.Open(t.Context(), db)
		})
	}
	close(start)
	wg.Wait()
	for i := range replicas {
		require.NoError(t, errs[i], "replica %d", i)
		t.Cleanup(func() { require.NoError(t, stores[i].Close()) })
	}
	require.Equal(t, allOnce(), appliedVersions(t, connect(t, db)))

	// Every replica works on the one schema.
	for i, st := range stores {
		_, err := st.CreateJob(t.Context(), store.Job{Name: string(rune('a' + i)), Handler: "svc/h"})
		require.NoError(t, err)
	}
	jobs, err := stores[0].ListJobs(t.Context(), store.ListJobsParams{})
	require.NoError(t, err)
	require.Len(t, jobs, replicas)
}

// TestMigrationWaitsForTheLock holds the migration lock and checks that a migrator waits for
// it and then finds the work to do.
func TestMigrationWaitsForTheLock(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	holder := connect(t, db)
	watcher := connect(t, db)
	ctx := t.Context()
	_, err := holder.Exec(ctx, `CREATE TABLE tock_migration_lock (id INTEGER NOT NULL PRIMARY KEY, locked_at TIMESTAMPTZ)`)
	require.NoError(t, err)
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE tock_migration_lock IN EXCLUSIVE MODE`)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- pg.Migrate(ctx, db) }()
	waitForLockWaiter(t, watcher)
	select {
	case err := <-done:
		t.Fatalf("Migrate returned while the lock was held: %v", err)
	default:
	}
	var versionTable bool
	require.NoError(t, watcher.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'goose_db_version')`).Scan(&versionTable))
	require.False(t, versionTable, "nothing migrated while the lock was held")

	require.NoError(t, tx.Rollback(ctx))
	require.NoError(t, <-done)
	require.Equal(t, allOnce(), appliedVersions(t, watcher))
}
