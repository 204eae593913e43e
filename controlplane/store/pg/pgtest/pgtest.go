// Package pgtest gives each test a fresh PostgreSQL (or CockroachDB) database of its own.
//
// The databases live on one server per test binary:
//
//   - TOCK_TEST_DATABASE_URL, when set, names that server (any database on it; the tests
//     create and drop their own next to it, so the role needs CREATEDB).
//   - Otherwise the first test that asks starts a throwaway PostgreSQL from the installed
//     binaries (initdb, postgres: found on PATH, through pg_config, or in the usual package
//     folders such as /usr/lib/postgresql/<version>/bin) in a temporary directory, listening
//     on a free loopback port and on a unix socket in that directory. The server runs with
//     fsync, synchronous_commit and full_page_writes off: fine for tests, whose data is thrown
//     away, never for benchmarks. When the tests run as root it runs as the postgres user,
//     since initdb and postgres refuse root. It is stopped, and its directory removed, when the
//     test binary's tests end; it also dies with the test binary if that is killed.
//   - Only when no PostgreSQL binary exists at all are the tests skipped, with the reason.
//
// TOCK_TEST_COCKROACH_URL names a CockroachDB cluster for NewCockroachDatabase; without it,
// those tests are skipped with the reason.
//
// Each database is created as tock_test_<random> and dropped when its test ends. PostgreSQL
// databases are created with default_transaction_isolation = serializable, so that every
// statement runs at the isolation CockroachDB always uses.
//
// A package that uses pgtest wraps its tests with Main:
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(pgtest.Main(m))
//	}
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The environment variables pgtest reads.
const (
	// DatabaseURLEnv names a PostgreSQL server to create test databases on.
	DatabaseURLEnv = "TOCK_TEST_DATABASE_URL"
	// CockroachURLEnv names a CockroachDB cluster to create test databases on.
	CockroachURLEnv = "TOCK_TEST_COCKROACH_URL"
)

// noPostgres is the reason tests are skipped when there is no PostgreSQL to run.
const noPostgres = "no PostgreSQL: install the postgresql package or set " + DatabaseURLEnv

// errNoPostgres means no PostgreSQL binary was found.
var errNoPostgres = errors.New(noPostgres)

var (
	// wrapped is set by Main; NewDatabase refuses to start a server nothing would stop.
	wrapped atomic.Bool

	pgOnce   sync.Once
	pgServer *server // the PostgreSQL server, once pgOnce ran
	pgErr    error   // why it could not be had

	crdbOnce   sync.Once
	crdbServer *server
	crdbErr    error
)

// server is a database server test databases are created on.
type server struct {
	// admin is the URL of a database to connect to while creating and dropping others.
	admin *url.URL
	// cockroach is true for CockroachDB.
	cockroach bool
	// dropForce is true when DROP DATABASE takes WITH (FORCE) (PostgreSQL 13 and later).
	dropForce bool
	// fileCopy is true when CREATE DATABASE copies the template's files rather than writing
	// them through the WAL: PostgreSQL 15 and later, on the server this process started (for
	// a small template that is faster, but it checkpoints, which a shared server may not like).
	fileCopy bool
	// local is the server this process started, nil for one named by the environment.
	local *localServer
}

// Runner is what Main returns: a testing.M whose Run also stops the server.
type Runner interface {
	Run() int
}

type runner struct{ m *testing.M }

// Main wraps m so that Run runs the tests and then stops the PostgreSQL server they shared,
// if this process started one. goleak.VerifyTestMain takes the result.
func Main(m *testing.M) Runner {
	wrapped.Store(true)
	return runner{m}
}

func (r runner) Run() int {
	code := r.m.Run()
	if pgServer != nil && pgServer.local != nil {
		if err := pgServer.local.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop PostgreSQL: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// NewDatabase creates an empty PostgreSQL database for t, dropped when t ends, and returns its
// URL. It skips t when there is no PostgreSQL to run, and fails it when the server cannot be
// had for another reason.
func NewDatabase(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgServer, pgErr = postgresServer() })
	if errors.Is(pgErr, errNoPostgres) {
		t.Skip(noPostgres)
	}
	if pgErr != nil {
		t.Fatalf("pgtest: %v", pgErr)
	}
	return pgServer.newDatabase(t)
}

// NewCockroachDatabase creates an empty database for t on the CockroachDB cluster named by
// TOCK_TEST_COCKROACH_URL, dropped when t ends, and returns its URL. It skips t when the
// variable is not set.
func NewCockroachDatabase(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(CockroachURLEnv)
	if raw == "" {
		t.Skip("no CockroachDB: set " + CockroachURLEnv + " to run these tests against one")
	}
	crdbOnce.Do(func() { crdbServer, crdbErr = remoteServer(raw, CockroachURLEnv) })
	if crdbErr != nil {
		t.Fatalf("pgtest: %v", crdbErr)
	}
	if !crdbServer.cockroach {
		t.Fatalf("pgtest: %s does not name a CockroachDB cluster", CockroachURLEnv)
	}
	return crdbServer.newDatabase(t)
}

// postgresServer returns the server named by TOCK_TEST_DATABASE_URL, or starts one.
func postgresServer() (*server, error) {
	if raw := os.Getenv(DatabaseURLEnv); raw != "" {
		return remoteServer(raw, DatabaseURLEnv)
	}
	if !wrapped.Load() {
		return nil, errors.New("the package's TestMain must run its tests through pgtest.Main, which stops the server")
	}
	local, err := startLocal()
	if err != nil {
		return nil, err
	}
	admin, err := url.Parse(local.url)
	if err != nil {
		_ = local.stop()
		return nil, err
	}
	s := &server{admin: admin, local: local}
	if err := s.probe(); err != nil {
		_ = local.stop()
		return nil, err
	}
	return s, nil
}

// remoteServer returns the server named by the URL in the environment variable env.
func remoteServer(raw, env string) (*server, error) {
	raw = strings.Replace(raw, "cockroach://", "postgresql://", 1)
	admin, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not a URL", env)
	}
	s := &server{admin: admin}
	if err := s.probe(); err != nil {
		return nil, fmt.Errorf("%s (%s): %w", env, admin.Redacted(), err)
	}
	return s, nil
}

// probe connects to the server and learns what it is.
func (s *server) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.admin.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return err
	}
	s.cockroach = strings.Contains(version, "CockroachDB")
	if !s.cockroach {
		var num int
		if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
			return err
		}
		s.dropForce = num >= 130000
		s.fileCopy = s.local != nil && num >= 150000
	}
	return nil
}

// newDatabase creates a database for t and drops it when t ends.
func (s *server) newDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "tock_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	create := "CREATE DATABASE " + name
	if s.fileCopy {
		create += " STRATEGY FILE_COPY"
	}
	stmts := []string{create}
	if !s.cockroach {
		stmts = append(stmts, "ALTER DATABASE "+name+" SET default_transaction_isolation TO 'serializable'")
	}
	if err := s.exec(ctx, stmts...); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drop := "DROP DATABASE IF EXISTS " + name
		switch {
		case s.cockroach:
			drop += " CASCADE"
		case s.dropForce:
			drop += " WITH (FORCE)"
		}
		if err := s.exec(ctx, drop); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})

	u := *s.admin
	u.Path = "/" + name
	return u.String()
}

// exec runs statements on the admin database, each on its own.
func (s *server) exec(ctx context.Context, stmts ...string) error {
	conn, err := pgx.Connect(ctx, s.admin.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, stmt := range stmts {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}
