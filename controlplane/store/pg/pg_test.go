package pg_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/pg"
	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
	"github.com/tockhq/tock/controlplane/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.Main(m))
}

// open opens a store on url, closed when t ends.
func open(t *testing.T, url string, opts ...pg.Option) *pg.Store {
	t.Helper()
	st, err := pg.Open(t.Context(), url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

// TestConformance runs the store conformance suite against PostgreSQL, whose databases
// pgtest sets to SERIALIZABLE, and against CockroachDB when TOCK_TEST_COCKROACH_URL names one.
// The database clock cannot be moved: the suite waits for it.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, db := range []struct {
		name        string
		newDatabase func(testing.TB) string
	}{
		{"PostgreSQL", pgtest.NewDatabase},
		{"CockroachDB", pgtest.NewCockroachDatabase},
	} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			db.newDatabase(t) // skips here, once, when there is no such server
			storetest.Run(t, storetest.Harness{
				NewStore: func(t *testing.T) (store.Store, func(time.Duration)) {
					return open(t, db.newDatabase(t)), nil
				},
			})
		})
	}
}
