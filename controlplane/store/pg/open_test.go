package pg_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/pg"
	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
)

// connect opens a plain connection to url, closed when t ends.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close(context.Background())) })
	return conn
}

// withScheme returns raw with its scheme replaced.
func withScheme(t *testing.T, raw, scheme string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.Scheme = scheme
	return u.String()
}

// appliedVersions returns how many times each migration version is recorded.
func appliedVersions(t *testing.T, conn *pgx.Conn) map[int64]int {
	t.Helper()
	rows, err := conn.Query(t.Context(), `SELECT version_id, count(*) FROM goose_db_version GROUP BY version_id`)
	require.NoError(t, err)
	counts := map[int64]int{}
	for rows.Next() {
		var version, n int64
		require.NoError(t, rows.Scan(&version, &n))
		counts[version] = int(n)
	}
	require.NoError(t, rows.Err())
	return counts
}

// allOnce is every migration version recorded once: 0 (goose's own) and that of each file in
// migrations/.
func allOnce() map[int64]int {
	m := map[int64]int{0: 1} // goose's own initial version
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		v, err := strconv.ParseInt(strings.SplitN(filepath.Base(f), "_", 2)[0], 10, 64)
		if err != nil {
			panic(fmt.Sprintf("migration %s: %v", f, err))
		}
		m[v] = 1
	}
	return m
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("Schemes", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t)
		for _, scheme := range []string{"postgres", "postgresql"} {
			st := open(t, withScheme(t, db, scheme))
			_, err := st.Now(t.Context())
			require.NoError(t, err, scheme)
		}
		_, err := pg.Open(t.Context(), withScheme(t, db, "cockroach"))
		require.ErrorContains(t, err, "not CockroachDB")
	})

	t.Run("ErrorsKeepThePasswordOut", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		for _, raw := range []string{
			"mysql://tock:s3cret@127.0.0.1/tock",
			"host=127.0.0.1 user=tock password=s3cret",
			"postgres://tock:s3cret@127.0.0.1:1/tock?sslmode=disable&connect_timeout=5", // nothing listens on port 1
			"postgres://127.0.0.1:1/tock?sslmode=disable&password=s3cret",
			"postgres://tock:s3%cret@127.0.0.1/tock",
		} {
			_, err := pg.Open(ctx, raw)
			require.Error(t, err, raw)
			require.NotContains(t, err.Error(), "s3cret", raw)
			require.NotContains(t, err.Error(), "s3%cret", raw)
			err = pg.Migrate(ctx, raw)
			require.Error(t, err, raw)
			require.NotContains(t, err.Error(), "s3cret", raw)
		}
	})

	t.Run("ReopenKeepsDataAndMigratesOnce", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t)
		ctx := t.Context()

		st, err := pg.Open(ctx, db)
		require.NoError(t, err)
		job, err := st.CreateJob(ctx, store.Job{Name: "kept", Handler: "svc/h", Payload: []byte("x")})
		require.NoError(t, err)
		exec, err := st.CreateExecution(ctx, store.Execution{Job: "kept", Handler: "svc/h"})
		require.NoError(t, err)
		require.NoError(t, st.Close())

		conn := connect(t, db)
		require.Equal(t, allOnce(), appliedVersions(t, conn))
		for range 2 {
			again, err := pg.Open(ctx, db)
			require.NoError(t, err)
			got, err := again.GetJob(ctx, "kept")
			require.NoError(t, err)
			require.Equal(t, job, got)
			gotExec, err := again.GetExecution(ctx, exec.ID)
			require.NoError(t, err)
			require.Equal(t, exec, gotExec)
			require.NoError(t, again.Close())
		}
		require.Equal(t, allOnce(), appliedVersions(t, conn), "reopening applies no migration twice")
	})

	t.Run("WithoutMigrationsThenMigrate", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t)
		ctx := t.Context()
		st := open(t, db, pg.WithoutMigrations())
		_, err := st.CreateJob(ctx, store.Job{Name: "early", Handler: "svc/h"})
		require.ErrorContains(t, err, `relation "jobs" does not exist`)

		require.NoError(t, pg.Migrate(ctx, db))
		require.NoError(t, pg.Migrate(ctx, db), "migrating again does nothing")
		_, err = st.CreateJob(ctx, store.Job{Name: "early", Handler: "svc/h"})
		require.NoError(t, err)
		require.Equal(t, allOnce(), appliedVersions(t, connect(t, db)))
	})

	t.Run("ClosedPoolFails", func(t *testing.T) {
		t.Parallel()
		st, err := pg.Open(t.Context(), pgtest.NewDatabase(t))
		require.NoError(t, err)
		require.NoError(t, st.Close())
		_, err = st.ListJobs(t.Context(), store.ListJobsParams{})
		require.Error(t, err)
	})
}
