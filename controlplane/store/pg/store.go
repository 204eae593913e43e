package pg

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	crdbpgx "github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tockhq/tock/controlplane/store"
)

// Store is the PostgreSQL and CockroachDB store. It is safe for concurrent use, by many
// goroutines and by many replicas sharing one database.
type Store struct {
	pool    *pgxpool.Pool
	dialect *dialect
	// retries counts transactions run again after a serialization failure.
	retries atomic.Uint64
	// onRetry is called on each such retry; nil when not set.
	onRetry func()
}

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	migrate bool
	onRetry func()
}

// WithoutMigrations opens the store without bringing its schema up to date, for deployments
// that run Migrate (tockd migrate) as a step of their own. Default: Open migrates.
func WithoutMigrations() Option {
	return func(o *options) { o.migrate = false }
}

// WithRetryObserver sets a function called each time a transaction is run again after a
// serialization failure (SQLSTATE 40001) or, on PostgreSQL, a deadlock (40P01); the control
// plane counts them as tock_store_tx_retries_total. It must be quick and safe for concurrent
// use. Default: none (Store.TxRetries still counts).
func WithRetryObserver(observe func()) Option {
	return func(o *options) { o.onRetry = observe }
}

// Open connects to the PostgreSQL or CockroachDB database at url (postgres://,
// postgresql:// or cockroach://), learns which of the two it is, and brings its schema up to
// date. The URL takes pgx's parameters, pool_max_conns among them. No error it returns
// contains the URL's password.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{migrate: true}
	for _, opt := range opts {
		opt(&o)
	}
	t, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if _, ok := t.config.ConnConfig.RuntimeParams["application_name"]; !ok {
		t.config.ConnConfig.RuntimeParams["application_name"] = "tockd"
	}
	pool, err := pgxpool.NewWithConfig(ctx, t.config)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", t.redacted, t.scrubError(err))
	}
	d, err := detect(ctx, t, func(ctx context.Context, sql string) pgx.Row { return pool.QueryRow(ctx, sql) })
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store %s: %w", t.redacted, err)
	}
	if o.migrate {
		if err := migrate(ctx, t, d); err != nil {
			pool.Close()
			return nil, fmt.Errorf("open store %s: migrate: %w", t.redacted, err)
		}
	}
	return &Store{pool: pool, dialect: d, onRetry: o.onRetry}, nil
}

// detect asks the server what it is. A cockroach:// URL must name a CockroachDB cluster; a
// postgres:// one may name either.
func detect(ctx context.Context, t target, queryRow func(ctx context.Context, sql string) pgx.Row) (*dialect, error) {
	var version string
	if err := queryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return nil, t.scrubError(err)
	}
	if strings.Contains(version, "CockroachDB") {
		return cockroachDialect, nil
	}
	if t.cockroach {
		return nil, fmt.Errorf("the cockroach:// URL names a server that is not CockroachDB (%s); use postgres://", firstWords(version, 2))
	}
	return postgresDialect, nil
}

// firstWords returns the first n words of s.
func firstWords(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}

// Close closes the store's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// TxRetries returns how many transactions were run again after a serialization failure.
func (s *Store) TxRetries() uint64 {
	return s.retries.Load()
}

// Now returns the database clock, in UTC, to the microsecond.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.pool.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("now: %w", interpretError(err))
	}
	return now.UTC(), nil
}

// txOptions are every transaction's: SERIALIZABLE on both databases, whatever the server's
// default, so that a transaction's reads and writes behave as if transactions ran one at a
// time, as they do in the SQLite store.
var txOptions = pgx.TxOptions{IsoLevel: pgx.Serializable}

// maxAttempts bounds how often a PostgreSQL transaction is tried (cockroach-go's bound too).
const maxAttempts = 50

// inTx runs fn in a serializable transaction and commits it. now is the database clock at the
// start of the transaction (now()), the one time every write of the transaction records.
//
// A transaction that fails with a serialization failure is run again, fn included:
//
//   - CockroachDB: through crdbpgxv5.ExecuteTx, which retries inside the transaction with
//     CockroachDB's savepoint protocol (SAVEPOINT cockroach_restart … RELEASE).
//   - PostgreSQL: as a new transaction, after a short jittered backoff, up to maxAttempts
//     times, also after a deadlock (40P01). crdbpgxv5.ExecuteTx cannot serve here: after a
//     serialization failure PostgreSQL's transaction is doomed, so retrying inside it with
//     ROLLBACK TO SAVEPOINT fails again every time; and PostgreSQL often reports the failure
//     at COMMIT, whose error ExecuteTx ignores, so a transaction that did not commit would be
//     reported as committed.
//
// An error from fn aborts the transaction and is returned; wrap a caller's callback error in
// callbackError so that it is never mistaken for a retryable one.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx, now time.Time) error) error {
	body := func(tx pgx.Tx) error {
		var now time.Time
		if err := tx.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
			return err
		}
		return fn(tx, now.UTC())
	}
	if s.dialect.savepointRetries {
		calls := 0
		err := crdbpgx.ExecuteTx(ctx, s.pool, txOptions, func(tx pgx.Tx) error {
			if calls++; calls > 1 {
				s.retried()
			}
			return body(tx)
		})
		if errors.As(err, new(*crdb.MaxRetriesExceededError)) {
			return fmt.Errorf("%w: %w", store.ErrContended, err)
		}
		return err
	}
	return s.retry(ctx, func() error { return pgx.BeginTxFunc(ctx, s.pool, txOptions, body) })
}

// retry runs fn, and again while it fails with a serialization failure or a deadlock, up to
// maxAttempts times, waiting a little longer each time.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("%w: gave up after %d attempts: %w", store.ErrContended, attempt, err)
		}
		s.retried()
		if err := wait(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

// retried counts one retry.
func (s *Store) retried() {
	s.retries.Add(1)
	if s.onRetry != nil {
		s.onRetry()
	}
}

// retryable reports whether err ended a transaction that can be run again as is.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40001", // serialization_failure
		"40P01": // deadlock_detected
		return true
	}
	return false
}

// backoff is the wait before attempt+1: from about 1ms, doubling, up to about 100ms, jittered
// so that transactions that failed together do not meet again.
func backoff(attempt int) time.Duration {
	d := min(time.Millisecond<<min(attempt-1, 7), 100*time.Millisecond)
	return d/2 + rand.N(d)
}

// wait waits d, or until ctx is done.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// callbackError carries an error returned by a caller's callback through inTx untouched.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// interpretError turns driver errors into the store's: no rows is ErrNotFound, a duplicate key
// (23505) ErrAlreadyExists, a reference to a missing job (foreign key, 23503) ErrNotFound.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return store.ErrAlreadyExists
		case "23503": // foreign_key_violation
			return store.ErrNotFound
		}
	}
	return err
}

// params returns "$from, $from+1, …" for n parameters.
func params(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// querier is what a pool and a transaction both offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// query runs a read on the pool, again after a serialization failure, and scans its rows.
func query[T any](ctx context.Context, s *Store, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	var out []T
	err := s.retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
		return err
	})
	return out, err
}
