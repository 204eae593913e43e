package daemon

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/pg"
	"github.com/tockhq/tock/controlplane/store/sqlite"
)

// storeTarget is a parsed --store value.
type storeTarget struct {
	// kind is "sqlite" or "pg" (PostgreSQL or CockroachDB).
	kind string
	// path is the SQLite file.
	path string
	// url is the PostgreSQL or CockroachDB connection URL.
	url string
}

// String describes the target without secrets, for logs.
func (t storeTarget) String() string {
	if t.kind == "sqlite" {
		return "sqlite:" + t.path
	}
	return redact(t.url)
}

// parseStore reads --store. An empty value means SQLite in dataDir.
func parseStore(raw, dataDir string) (storeTarget, error) {
	if raw == "" {
		return storeTarget{kind: "sqlite", path: filepath.Join(dataDir, "tock.db")}, nil
	}
	if !strings.Contains(raw, "://") {
		return storeTarget{kind: "sqlite", path: raw}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return storeTarget{}, fmt.Errorf("--store is not a URL: use sqlite:///path/to/tock.db, postgres://… or cockroach://…")
	}
	switch u.Scheme {
	case "sqlite", "file":
		path := u.Path
		if u.Host != "" && u.Host != "localhost" {
			// sqlite://relative/path.db
			path = u.Host + u.Path
		}
		if path == "" {
			return storeTarget{}, fmt.Errorf("--store %q names no file; use sqlite:///path/to/tock.db", raw)
		}
		return storeTarget{kind: "sqlite", path: path}, nil
	case "postgres", "postgresql", "cockroach":
		return storeTarget{kind: "pg", url: raw}, nil
	default:
		return storeTarget{}, fmt.Errorf("--store scheme %q is not supported; use sqlite:///path/to/tock.db, postgres://… or cockroach://…", u.Scheme)
	}
}

// openStore opens the store and applies its migrations. Transaction retries are counted in
// tock_store_tx_retries_total when reg is not nil.
func openStore(ctx context.Context, t storeTarget, reg prometheus.Registerer) (store.Store, error) {
	// SQLite runs one write transaction at a time and never retries; the counter is there
	// anyway, at 0, so that dashboards and alerts work the same on every store.
	retries := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tock_store_tx_retries_total",
		Help: "Database transactions retried after a serialization conflict.",
	})
	if reg != nil {
		reg.MustRegister(retries)
	}
	switch t.kind {
	case "sqlite":
		return sqlite.Open(ctx, t.path)
	default:
		return pg.Open(ctx, t.url, pg.WithRetryObserver(retries.Inc))
	}
}

// migrateStore applies the migrations of the target's database.
func migrateStore(ctx context.Context, t storeTarget) error {
	if t.kind == "sqlite" {
		st, err := sqlite.Open(ctx, t.path)
		if err != nil {
			return err
		}
		return st.Close()
	}
	return pg.Migrate(ctx, t.url)
}

// redact hides a password in a connection URL, for error messages and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
