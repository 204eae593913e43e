package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
)

// durableSettings are the server settings every run uses, for Tock and every peer alike:
// commits wait for the WAL to reach the disk. Everything not named keeps PostgreSQL's default.
var durableSettings = []string{
	"fsync=on",
	"synchronous_commit=on",
	"full_page_writes=on",
	"max_connections=300",
	"listen_addresses=127.0.0.1",
	"logging_collector=off",
	"log_min_messages=warning",
}

// postgres is the PostgreSQL server of a run, started from the installed binaries in a
// directory of its own on disk (not in memory: the disk is part of what is measured).
type postgres struct {
	bin     string   // the folder holding initdb, postgres and pgbench
	dir     string   // holds the data directory and the log
	data    string   // the data directory
	port    int      //
	acct    *account // the account the server runs as; nil for this process's own
	proc    *proc
	version string // server_version
	// statements is whether pg_stat_statements is loaded and its view exists in the postgres
	// database: it counts the statements of every database.
	statements bool
	runs       int // how many times the postmaster was started, for its log's name
}

// startPostgres initialises a cluster under parent and starts it on a free loopback port.
func startPostgres(ctx context.Context, parent string) (*postgres, error) {
	bin, err := pgtest.BinDir("pgbench")
	if err != nil {
		return nil, fmt.Errorf("no PostgreSQL server binaries (initdb, postgres, pgbench) found: install the postgresql package: %w", err)
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, "postgres")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	if acct != nil {
		if err := os.Chown(dir, int(acct.uid), int(acct.gid)); err != nil {
			return nil, err
		}
		// The server's account must be able to reach dir through parent.
		if err := os.Chmod(parent, 0o755); err != nil {
			return nil, err
		}
	}
	pg := &postgres{bin: bin, dir: dir, data: filepath.Join(dir, "data"), acct: acct}
	// pg_stat_statements ships with the server (Debian's postgresql-NN package, the PGDG
	// packages' contrib): loaded when its library is installed beside the server's.
	_, err = os.Stat(filepath.Join(filepath.Dir(bin), "lib", "pg_stat_statements.so"))
	pg.statements = err == nil
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", pg.data, "--auth=trust",
		"--username=postgres", "--encoding=UTF8", "--locale=C", "--no-instructions")
	initdb.Dir = dir
	initdb.Env = cleanEnv()
	initdb.SysProcAttr = sysProcAttr(acct)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, bytes.TrimSpace(out))
	}
	var errs []error
	for range 3 { // a port found free can be taken before the server binds it
		if err := pg.start(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		if pg.statements {
			pg.statements = pg.exec(ctx, "postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements") == nil
		}
		return pg, nil
	}
	return nil, errors.Join(errs...)
}

// start runs the postmaster and waits until it accepts connections.
func (pg *postgres) start(ctx context.Context) error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	pg.port = lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	return pg.run(ctx)
}

// run starts the postmaster on pg.port and waits until it accepts connections.
func (pg *postgres) run(ctx context.Context) error {
	pg.runs++
	logName := "postgres-" + strconv.Itoa(pg.port)
	if pg.runs > 1 {
		logName += "-" + strconv.Itoa(pg.runs)
	}
	args := []string{"-D", pg.data, "-p", strconv.Itoa(pg.port), "-c", "unix_socket_directories=" + pg.dir}
	for _, s := range durableSettings {
		args = append(args, "-c", s)
	}
	if pg.statements {
		args = append(args, "-c", "shared_preload_libraries=pg_stat_statements")
	}
	p, err := startProc(pg.dir, logName, pg.acct, cleanEnv(),
		filepath.Join(pg.bin, "postgres"), args...)
	if err != nil {
		return err
	}
	pg.proc = p
	err = p.waitUntil(ctx, 60*time.Second, "accepting connections", func(ctx context.Context) bool {
		c, err := pgx.Connect(ctx, pg.url("postgres"))
		if err != nil {
			return false
		}
		defer c.Close(context.WithoutCancel(ctx))
		return c.QueryRow(ctx, "SHOW server_version").Scan(&pg.version) == nil
	})
	if err != nil {
		p.kill()
		return err
	}
	return nil
}

// url returns the URL of database db as the postgres role over loopback TCP.
func (pg *postgres) url(db string) string { return pg.urlAs("postgres", db) }

// urlAs returns the URL of database db as role over loopback TCP.
func (pg *postgres) urlAs(role, db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", role, pg.port, db)
}

// exec runs statements, one by one, on database db.
func (pg *postgres) exec(ctx context.Context, db string, stmts ...string) error {
	c, err := pgx.Connect(ctx, pg.url(db))
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// settings returns the server's settings that differ from PostgreSQL's defaults and matter
// to a benchmark, as "name=value".
func (pg *postgres) settings(ctx context.Context) ([]string, error) {
	c, err := pgx.Connect(ctx, pg.url("postgres"))
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	rows, err := c.Query(ctx, `SELECT name, setting, COALESCE(unit, '') FROM pg_settings
		WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method',
			'shared_buffers', 'max_connections', 'max_wal_size', 'checkpoint_timeout',
			'default_transaction_isolation', 'wal_level', 'commit_delay', 'shared_preload_libraries')
		ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var name, setting, unit string
		if err := r.Scan(&name, &setting, &unit); err != nil {
			return "", err
		}
		return name + "=" + setting + unitSuffix(unit), nil
	})
}

// dbStats are cumulative counters of the server: transactions committed and rolled back in
// one database, rows it wrote, and the WAL the whole server wrote and flushed. PostgreSQL
// updates them when a backend reports (within about a second while busy, ten when idle, and
// when it exits), so differences are only exact between quiet moments.
type dbStats struct {
	Commits, Rollbacks, Rows, WALBytes, WALSyncs float64
}

// stats reads the counters of database db.
func (pg *postgres) stats(ctx context.Context, db string) (dbStats, error) {
	c, err := pgx.Connect(ctx, pg.url("postgres"))
	if err != nil {
		return dbStats{}, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var s dbStats
	if err := c.QueryRow(ctx, `SELECT xact_commit::float8, xact_rollback::float8,
			(tup_inserted + tup_updated + tup_deleted)::float8
		FROM pg_stat_database WHERE datname = $1`, db).Scan(&s.Commits, &s.Rollbacks, &s.Rows); err != nil {
		return dbStats{}, fmt.Errorf("read pg_stat_database: %w", err)
	}
	if err := c.QueryRow(ctx, `SELECT wal_bytes::float8, wal_sync::float8 FROM pg_stat_wal`).Scan(&s.WALBytes, &s.WALSyncs); err != nil {
		return dbStats{}, fmt.Errorf("read pg_stat_wal: %w", err)
	}
	return s, nil
}

// statementCount returns how many statements pg_stat_statements has counted in database db,
// except those of role skip and transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT);
// NaN when pg_stat_statements is not loaded.
func (pg *postgres) statementCount(ctx context.Context, db, skip string) (float64, error) {
	if !pg.statements {
		return math.NaN(), nil
	}
	c, err := pgx.Connect(ctx, pg.url("postgres"))
	if err != nil {
		return 0, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var n float64
	err = c.QueryRow(ctx, `SELECT COALESCE(sum(s.calls), 0)::float8
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = $1 AND s.userid NOT IN (SELECT oid FROM pg_roles WHERE rolname = $2)
			AND s.query !~* '^\s*(begin|start transaction|commit|end|rollback|savepoint|release)\M'`, db, skip).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	return n, nil
}

// unitSuffix renders a pg_settings unit after a value ("8kB" becomes "×8kB").
func unitSuffix(unit string) string {
	switch unit {
	case "":
		return ""
	case "8kB":
		return "×8kB"
	}
	return unit
}

// stop shuts the server down (fast mode).
func (pg *postgres) stop() error {
	if pg.proc == nil {
		return nil
	}
	return pg.proc.stop(syscall.SIGINT, 60*time.Second)
}

// restart stops the server (fast mode: sessions are ended, open transactions rolled back,
// a shutdown checkpoint written) and starts it again on the same port. It returns when the
// postmaster had exited and when the new one accepted connections.
func (pg *postgres) restart(ctx context.Context) (down, up time.Time, err error) {
	if err := pg.stop(); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("stop PostgreSQL: %w", err)
	}
	down = time.Now()
	if err := pg.run(ctx); err != nil {
		return down, time.Time{}, fmt.Errorf("start PostgreSQL again: %w", err)
	}
	return down, time.Now(), nil
}

// serverAccount returns the account to run initdb and postgres as: this process's own,
// unless it is root, which they refuse; then the postgres user's.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and no postgres user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &account{uid: uint32(uid), gid: uint32(gid)}, nil
}

// cleanEnv returns this process's environment without PG* variables, so that none of the
// caller's connection settings leak into the server's tools.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}
