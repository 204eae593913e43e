package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"
)

// Config is tockd's configuration, from its flags.
type Config struct {
	// Dev runs the development server: an agent in the same process, text logs.
	Dev bool
	// DataDir holds the embedded SQLite database. Default ".tock".
	DataDir string
	// Store is the database: "sqlite:///path/to/file.db" (or a bare path), or a PostgreSQL
	// ("postgres://…") or CockroachDB ("cockroach://…") URL. Default: SQLite in DataDir.
	Store string
	// GRPCAddr is where the gRPC API listens. Default 127.0.0.1:7400.
	GRPCAddr string
	// HTTPAddr is where REST (/v1), /metrics and /healthz listen. Default 127.0.0.1:7401.
	HTTPAddr string
	// AppAddr is the local service the development agent invokes. Default 127.0.0.1:7403.
	AppAddr string
	// AgentService and AgentCapacity describe the development agent. Defaults "default", 16.
	AgentService  string
	AgentCapacity int
	// ReplicaID names this replica. Default host name and process id.
	ReplicaID string
	// AdvertiseAddr is the gRPC address this replica registers in the replica registry, for
	// others to reach it. Default: the address the gRPC API listens on.
	AdvertiseAddr string
	// ReplicaTTL is how long this replica's registration lasts unless refreshed (it is
	// refreshed every third of it): when a replica dies, its agents move after about this
	// long. From 1s to 10m; the flag's default is 10s.
	ReplicaTTL time.Duration
	// Lease is how long an assignment lasts without a heartbeat from its agent; then the
	// execution is LOST and retried. At least 1s; the flag's default is 15s.
	Lease time.Duration
	// Retention is how long finished executions and fires are kept; 0 keeps them forever.
	// The flag's default is 168h (7 days).
	Retention time.Duration
	// LogFormat is "text" or "json". Default: text in dev mode, json otherwise.
	LogFormat string
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// ShutdownTimeout bounds a graceful stop. Default 30s.
	ShutdownTimeout time.Duration
}

// Defaults for Config.
const (
	DefaultDataDir    = ".tock"
	DefaultGRPCAddr   = "127.0.0.1:7400"
	DefaultHTTPAddr   = "127.0.0.1:7401"
	DefaultAppAddr    = "127.0.0.1:7403"
	DefaultReplicaTTL = 10 * time.Second
	DefaultLease      = 15 * time.Second
	DefaultRetention  = 7 * 24 * time.Hour
)

// Bounds of the durations a person sets.
const (
	minReplicaTTL = time.Second
	maxReplicaTTL = 10 * time.Minute
	minRetention  = time.Minute
	minLease      = time.Second
	maxLease      = 24 * time.Hour
)

// check reports the first flag out of bounds, as a usage error.
func (c Config) check() error {
	if c.ReplicaTTL < minReplicaTTL || c.ReplicaTTL > maxReplicaTTL {
		return usageError{fmt.Errorf("--replica-ttl %s: must be from %s to %s", c.ReplicaTTL, minReplicaTTL, maxReplicaTTL)}
	}
	if c.Lease < minLease || c.Lease > maxLease {
		return usageError{fmt.Errorf("--lease %s: must be from %s to %s", c.Lease, minLease, maxLease)}
	}
	if c.Retention < 0 || (c.Retention > 0 && c.Retention < minRetention) {
		return usageError{fmt.Errorf("--retention %s: must be 0 (keep everything) or at least %s", c.Retention, minRetention)}
	}
	return nil
}

func defaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "tockd"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

func newLogger(format, level string, dev bool) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(orDefault(level, "info"))); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "" {
		format = "json"
		if dev {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
