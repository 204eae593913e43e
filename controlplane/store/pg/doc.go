// Package pg is the store for CockroachDB and PostgreSQL: the control plane's state in a
// database that many tockd replicas share. It implements store.Store on pgx (pgxpool), and
// keeps pgx inside this package.
//
//	st, err := pg.Open(ctx, "cockroach://tock@crdb:26257/tock?sslmode=verify-full")
//	st, err := pg.Open(ctx, "postgres://tock:…@db:5432/tock")
//
// A cockroach:// URL is a postgresql:// URL that asks for CockroachDB; the server is also
// asked (SELECT version()), so a postgres:// URL to a CockroachDB cluster works too. Errors
// name the URL with its password replaced by xxxxx.
//
// # Transactions
//
// Every method that writes runs one transaction, SERIALIZABLE on both databases whatever the
// server's default: its reads and writes behave as if the replicas' transactions ran one at a
// time, as the SQLite store's do. Reads are single statements. A transaction the database
// aborts with a serialization failure (SQLSTATE 40001) is run again, callbacks included
// (plans, picks and retry plans must be pure):
//
//	CockroachDB ── crdbpgxv5.ExecuteTx: SAVEPOINT cockroach_restart … ROLLBACK TO SAVEPOINT …
//	               RELEASE, CockroachDB's client-side retry protocol, up to 50 times
//	PostgreSQL  ── BEGIN … COMMIT again, after a jittered backoff growing from about 1ms to
//	               100ms, up to 50 times; also after a deadlock (40P01)
//
// The two differ because PostgreSQL cannot retry inside the transaction: after a
// serialization failure its transaction is doomed (every retry after ROLLBACK TO SAVEPOINT
// fails again), and its failure often comes at COMMIT, whose error crdbpgxv5.ExecuteTx
// ignores. Store.TxRetries and WithRetryObserver count the retries of both.
//
// "Now" inside a method is the database's now(), read at the start of its transaction: every
// time a transaction records (fired, created, assigned, lease deadline) is that one.
//
// # Dialects
//
// The statements are the subset both databases run; what differs is in one place, the dialect
// (dialect.go):
//
//   - Claims (due jobs, pending and expired executions). PostgreSQL reads the rows
//     FOR NO KEY UPDATE SKIP LOCKED inside the transaction: concurrent claimers pass over
//     each other's rows. CockroachDB reads them FOR UPDATE: a concurrent claimer waits for
//     the rows and its read is retried above the first claimer's commit, where they are
//     claimed already. Either way the claimed rows are then updated conditionally (an
//     execution is assigned only WHERE state = 'pending') in the same serializable
//     transaction.
//   - Read-modify-write (UpdateJob, CompleteExecutions, RequestCancel) locks the rows it reads
//     (NO KEY UPDATE on PostgreSQL, which does not block inserts referencing a job).
//   - The migration lock: see below.
//
// # Encoding
//
// Times are TIMESTAMPTZ (microseconds; the store's times are truncated to the microsecond) and
// come back in UTC; a zero time is NULL. Durations are BIGINT microseconds. Payloads and
// results are BYTEA. Maps, lists, schedules, retry policies and errors are JSONB. Ids are TEXT
// (UUIDv7, which sort by creation).
//
// # Schema and migrations
//
// The schema is in migrations/, one DDL statement per file (CockroachDB runs schema changes
// one at a time), each idempotent (IF NOT EXISTS) and each index naming the query it serves.
// Open applies what is missing (WithoutMigrations skips that; Migrate does it alone, for
// tockd migrate) with goose.
//
// Replicas that start together take turns: the migrator holds a lock on the table
// tock_migration_lock in a transaction of its own (PostgreSQL: LOCK TABLE; CockroachDB, which
// has neither table nor advisory locks: an UPDATE of the table's one row, whose write intent
// blocks the next writer) while goose reads its version table and applies what is missing.
// The database releases the lock when the holder's transaction ends, also when the holder
// dies. PostgreSQL applies each migration and its version record in one transaction;
// CockroachDB, which advises against schema changes in multi-statement transactions, applies
// the DDL on its own and then records it.
//
// # Tests
//
// The tests need a real database: pgtest gives each test a database of its own, on the server
// TOCK_TEST_DATABASE_URL names or on a throwaway PostgreSQL it starts; the conformance suite
// also runs against CockroachDB when TOCK_TEST_COCKROACH_URL names a cluster.
package pg
