package pg

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
	"github.com/tockhq/tock/controlplane/store/storetest"
)

// TestCockroachStatementsOnPostgreSQL runs the conformance suite on PostgreSQL with the
// statements of the CockroachDB dialect (claims that lock and wait, the migration lock taken
// by writing its row, DDL outside transactions). It stands in where no CockroachDB is at
// hand: it checks that those statements are valid and keep the store's semantics on a
// serializable database, not CockroachDB's behaviour, which TestConformance/CockroachDB checks
// when TOCK_TEST_COCKROACH_URL names a cluster. Transactions keep PostgreSQL's retries: the
// savepoint protocol is CockroachDB's alone (see Store.inTx).
func TestCockroachStatementsOnPostgreSQL(t *testing.T) {
	t.Parallel()
	stand := *cockroachDialect
	stand.savepointRetries = false
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T) (store.Store, func(time.Duration)) {
			url := pgtest.NewDatabase(t)
			target, err := parseURL(url)
			require.NoError(t, err)
			require.NoError(t, migrate(t.Context(), target, &stand))
			s, err := Open(t.Context(), url, WithoutMigrations())
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			s.dialect = &stand
			return s, nil
		},
	})
}
