package pg

// dialect holds what differs between PostgreSQL and CockroachDB. Every other statement of the
// store is one both run.
type dialect struct {
	// name is the database's name, for messages.
	name string
	// claimLock ends a SELECT whose rows the transaction claims (due jobs, pending and
	// expired executions) so that concurrent claimers do not take the same rows.
	//
	// PostgreSQL skips rows another transaction holds, so claimers spread over the rows
	// instead of queueing behind each other; NO KEY UPDATE does not block the FOR KEY SHARE
	// lock that inserting a row referencing the job takes. CockroachDB's SKIP LOCKED is weak
	// (it skips only locks it sees, and a serializable read above another's write still
	// retries), so there claimers lock the rows they read and wait; the waiter's read is
	// retried by the server at a later timestamp, where the rows are claimed already.
	claimLock string
	// rowLock ends a SELECT of rows the transaction then changes (read-modify-write), so that
	// a concurrent writer waits rather than both proceeding to a serialization failure.
	rowLock string
	// lockMigrations takes the migration lock inside a transaction on tock_migration_lock;
	// it is held until that transaction ends. PostgreSQL locks the table. CockroachDB has no
	// table locks (nor advisory locks); it writes the lock row, and the write intent stays,
	// replicated, until the transaction ends: a second writer waits for it.
	lockMigrations string
	// isolateDDL runs each migration's DDL statement outside a transaction. CockroachDB
	// advises against schema changes inside multi-statement transactions (they are not
	// atomic there anyway); the migrations are idempotent (IF NOT EXISTS) so that one
	// interrupted between its DDL and its version record can run again. PostgreSQL runs each
	// migration and its version record in one transaction.
	isolateDDL bool
	// savepointRetries runs transactions through crdbpgxv5.ExecuteTx, which retries a
	// transaction inside itself (SAVEPOINT cockroach_restart) and commits with RELEASE. That
	// protocol is CockroachDB's; PostgreSQL retries whole transactions (see Store.inTx).
	savepointRetries bool
}

var (
	postgresDialect = &dialect{
		name:           "PostgreSQL",
		claimLock:      " FOR NO KEY UPDATE SKIP LOCKED",
		rowLock:        " FOR NO KEY UPDATE",
		lockMigrations: "LOCK TABLE " + migrationLockTable + " IN EXCLUSIVE MODE",
	}
	cockroachDialect = &dialect{
		name:             "CockroachDB",
		claimLock:        " FOR UPDATE",
		rowLock:          " FOR UPDATE",
		lockMigrations:   "UPDATE " + migrationLockTable + " SET locked_at = now() WHERE id = 1",
		isolateDDL:       true,
		savepointRetries: true,
	}
)
