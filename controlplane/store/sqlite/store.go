package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tockhq/tock/controlplane/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite store. It is safe for concurrent use.
type Store struct {
	// write has exactly one connection; every transaction on it begins IMMEDIATE.
	write *sql.DB
	// read has several query_only connections for single-statement reads.
	read *sql.DB
	// clock is the database clock.
	clock func() time.Time
}

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	clock       func() time.Time
	busyTimeout time.Duration
	readConns   int
}

// WithClock sets the clock that stands for the database clock. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.clock = now }
}

// WithBusyTimeout sets how long a connection waits for a lock held by another process on the
// same file before failing with SQLITE_BUSY. Default: 5s.
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busyTimeout = d }
}

// WithReadConns sets the size of the read pool. Default: the number of CPUs, at least 2.
func WithReadConns(n int) Option {
	return func(o *options) { o.readConns = n }
}

// Open opens the store in the SQLite file at path, creating the file and its directory when
// they do not exist, and brings its schema up to date.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{clock: time.Now, busyTimeout: 5 * time.Second, readConns: max(2, runtime.NumCPU())}
	for _, opt := range opts {
		opt(&o)
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	o.readConns = max(1, o.readConns)
	o.busyTimeout = max(0, o.busyTimeout)
	if err := checkPath(path); err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}

	write, err := sql.Open("sqlite", dsn(path, o, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := migrate(ctx, write); err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}

	read, err := sql.Open("sqlite", dsn(path, o, true))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	read.SetMaxOpenConns(o.readConns)
	read.SetMaxIdleConns(o.readConns)
	if err := read.PingContext(ctx); err != nil {
		_ = write.Close()
		_ = read.Close()
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	return &Store{write: write, read: read, clock: o.clock}, nil
}

// checkPath rejects names the two pools could not share: an in-memory database is private to
// one connection, and a '?' would start the DSN's parameters.
func checkPath(path string) error {
	switch {
	case path == "":
		return errors.New("empty path")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return fmt.Errorf("path %q: want a file path", path)
	case strings.ContainsRune(path, '?'):
		return fmt.Errorf("path %q contains '?'", path)
	}
	return nil
}

// dsn builds the connection string of one pool. The write pool's transactions begin
// IMMEDIATE; the read pool cannot write.
func dsn(path string, o options, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(o.busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

// migrate applies the embedded migrations that the file lacks.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.write.Close(), s.read.Close())
}

// Now returns the store's clock, in UTC and to the microsecond the store keeps.
func (s *Store) Now(context.Context) (time.Time, error) {
	return s.now(), nil
}

func (s *Store) now() time.Time {
	return s.clock().UTC().Truncate(time.Microsecond)
}

// inTx runs fn in a write transaction and commits it when fn returns nil. now is the clock
// read after the write lock was taken.
//
// fn runs the callers' callbacks (plans, picks); the deferred rollback frees the one write
// connection even when one of them panics.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx, now time.Time) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return interpretError(err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	if err := fn(tx, s.now()); err != nil {
		return err
	}
	return interpretError(tx.Commit())
}

// callbackError carries an error returned by a caller's callback through inTx untouched.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// interpretError turns driver errors into the store's: no rows is ErrNotFound, a duplicate key
// ErrAlreadyExists, a reference to a missing job ErrNotFound.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return store.ErrAlreadyExists
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return store.ErrNotFound
		}
	}
	return err
}

// queryer is what both a pool and a transaction offer.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// placeholders returns "?, ?, …" for n arguments.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
