package pg

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	t.Parallel()

	t.Run("Schemes", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			url       string
			cockroach bool
			host      string
			port      uint16
			database  string
		}{
			{"postgres://tock:s3cret@db.internal:5433/tock?sslmode=disable", false, "db.internal", 5433, "tock"},
			{"postgresql://tock@db.internal/tock?sslmode=disable", false, "db.internal", 5432, "tock"},
			{"POSTGRES://tock@db.internal/tock?sslmode=disable", false, "db.internal", 5432, "tock"},
			{"cockroach://root@crdb.internal:26257/tock?sslmode=disable", true, "crdb.internal", 26257, "tock"},
		} {
			got, err := parseURL(tc.url)
			require.NoError(t, err, tc.url)
			require.Equal(t, tc.cockroach, got.cockroach, tc.url)
			require.Equal(t, tc.host, got.config.ConnConfig.Host, tc.url)
			require.Equal(t, tc.port, got.config.ConnConfig.Port, tc.url)
			require.Equal(t, tc.database, got.config.ConnConfig.Database, tc.url)
		}
	})

	t.Run("Redacted", func(t *testing.T) {
		t.Parallel()
		got, err := parseURL("cockroach://tock:s3cret@crdb:26257/tock?sslmode=disable&password=other&application_name=x")
		require.NoError(t, err)
		require.Equal(t, "other", got.config.ConnConfig.Password, "pgx: the parameter wins")
		require.NotContains(t, got.redacted, "s3cret")
		require.NotContains(t, got.redacted, "other")
		require.Contains(t, got.redacted, "cockroach://tock:xxxxx@crdb:26257/tock")
		require.Contains(t, got.redacted, "application_name=x")
		require.Equal(t, "auth failed for xxxxx and xxxxx", got.scrub("auth failed for s3cret and other"))
	})

	t.Run("BadURLs", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			url  string
			want string
		}{
			{"", "empty store URL"},
			{"host=db user=tock password=s3cret", "not a URL"},
			{"mysql://tock:s3cret@db/tock", `scheme "mysql" is not supported`},
			{"postgres://tock:s3%zzcret@db/tock", "bad percent-encoding"},
			{"postgres://tock:s3cret@db:port/tock", "invalid port"},
			{"postgres://tock:s3cret@db/tock?sslmode=s3cret-mode", "invalid store URL postgres://tock:xxxxx@db/tock?sslmode=xxxxx-mode: failed to configure TLS"},
			{"postgres://db/tock?password=s3cret&sslmode=bogus", "password=xxxxx"},
			{"postgres://tock:s3cret@db/tock?connect_timeout=soon", "connect_timeout"},
		} {
			_, err := parseURL(tc.url)
			require.Error(t, err, tc.url)
			require.Contains(t, err.Error(), tc.want, tc.url)
			require.NotContains(t, err.Error(), "s3cret", tc.url)
		}
	})
}
