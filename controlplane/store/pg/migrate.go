package pg

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockTable is the table whose lock serialises migrations.
const migrationLockTable = "tock_migration_lock"

// Migrate brings the schema of the database at url up to date: tockd migrate, for
// deployments that open their stores WithoutMigrations. Several processes may
// migrate the same database at once: they take turns, and each migration is applied once.
func Migrate(ctx context.Context, url string) error {
	t, err := parseURL(url)
	if err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	if err := migrate(ctx, t, nil); err != nil {
		return fmt.Errorf("migrate store %s: %w", t.redacted, err)
	}
	return nil
}

// migrate applies the embedded migrations the database lacks, holding the migration lock.
// d is the database's dialect, or nil to ask the server.
func migrate(ctx context.Context, t target, d *dialect) error {
	db := stdlib.OpenDB(*t.config.ConnConfig.Copy())
	defer db.Close()
	if d == nil {
		var err error
		d, err = detect(ctx, t, func(ctx context.Context, query string) pgx.Row { return db.QueryRowContext(ctx, query) })
		if err != nil {
			return err
		}
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithIsolateDDL(d.isolateDDL),
	)
	if err != nil {
		return err
	}
	unlock, err := lockMigrations(ctx, db, d)
	if err != nil {
		return t.scrubError(err)
	}
	_, err = provider.Up(ctx)
	return t.scrubError(errors.Join(err, unlock()))
}

// lockMigrations takes the migration lock, waiting for it as long as ctx allows, and returns
// the function that releases it.
//
// The lock is a lock held by a transaction on tock_migration_lock, a table of one row created
// when missing: the transaction runs on a connection of its own and takes the dialect's lock
// (PostgreSQL: LOCK TABLE; CockroachDB: a write to the row), and every other migrator blocks
// there until the holder's transaction ends. The whole of goose's work runs under it, from
// creating its version table to recording the last migration, so the first migrator applies
// what is missing and the others then find nothing to do.
//
// Advisory locks, goose's default on PostgreSQL, do not exist on CockroachDB. And a lock held
// by a transaction, unlike a lease row, is released by the database when its holder dies, so a
// crashed migrator never blocks the next one.
func lockMigrations(ctx context.Context, db *sql.DB, d *dialect) (unlock func() error, err error) {
	err = retryRace(ctx, func() error {
		_, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+migrationLockTable+
			" (id INTEGER NOT NULL PRIMARY KEY, locked_at TIMESTAMPTZ)")
		if err != nil {
			return err
		}
		_, err = db.ExecContext(ctx, "INSERT INTO "+migrationLockTable+" (id) VALUES (1) ON CONFLICT (id) DO NOTHING")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", migrationLockTable, err)
	}
	err = retryRace(ctx, func() error {
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err == nil {
			if _, err = tx.ExecContext(ctx, d.lockMigrations); err == nil {
				unlock = func() error { return errors.Join(tx.Rollback(), conn.Close()) }
				return nil
			}
			_ = tx.Rollback()
		}
		return errors.Join(err, conn.Close())
	})
	if err != nil {
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	return unlock, nil
}

// retryRace runs fn again, a few times, when it fails because another migrator did the same
// thing at the same moment: two CREATE TABLE IF NOT EXISTS can both find no table and
// collide in the catalog (23505, 42P07, 42710), and serializable writes can conflict (40001).
func retryRace(ctx context.Context, fn func() error) error {
	const attempts = 10
	for attempt := 1; ; attempt++ {
		err := fn()
		var pgErr *pgconn.PgError
		if err == nil || attempt == attempts || !errors.As(err, &pgErr) {
			return err
		}
		switch pgErr.Code {
		case "23505", "42P07", "42710", "40001", "40P01":
		default:
			return err
		}
		if err := wait(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}
