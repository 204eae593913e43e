package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.Main(m))
}

// TestNewDatabase checks that each test gets an empty serializable database, dropped after it.
func TestNewDatabase(t *testing.T) {
	var first string
	t.Run("Fresh", func(t *testing.T) {
		first = pgtest.NewDatabase(t)
		conn := connect(t, first)
		var (
			tables    int
			isolation string
		)
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables))
		require.Zero(t, tables)
		require.NoError(t, conn.QueryRow(t.Context(), "SHOW default_transaction_isolation").Scan(&isolation))
		require.Equal(t, "serializable", isolation)
		_, err := conn.Exec(t.Context(), "CREATE TABLE t (id INT)")
		require.NoError(t, err)
	})
	t.Run("OwnDatabase", func(t *testing.T) {
		second := pgtest.NewDatabase(t)
		require.NotEqual(t, first, second)
		conn := connect(t, second)
		var tables int
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables))
		require.Zero(t, tables)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pgx.Connect(ctx, first)
		require.Error(t, err, "the first test's database was dropped")
	})
}

func TestNewCockroachDatabase(t *testing.T) {
	url := pgtest.NewCockroachDatabase(t)
	conn := connect(t, url)
	var version string
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT version()").Scan(&version))
	require.Contains(t, version, "CockroachDB")
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close(context.Background())) })
	return conn
}
