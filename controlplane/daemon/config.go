package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/tockhq/tock/controlplane/telemetry"
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
	// long. From 1s to 10m; the flag's default is 5s.
	ReplicaTTL time.Duration
	// Lease is how long an assignment lasts without a heartbeat from its agent; then the
	// execution is LOST and retried. At least 1s; the flag's default is 8s.
	Lease time.Duration
	// Lookahead is how long before their time executions may be assigned, carrying their
	// start time, so that work due at one instant starts on time; 0 assigns due work only.
	// At most 10s; the flag's default is 2s.
	Lookahead time.Duration
	// Retention is how long finished executions and fires are kept; 0 keeps them forever.
	// The flag's default is 168h (7 days).
	Retention time.Duration
	// LogFormat is "text" or "json". Default: text in dev mode, json otherwise.
	LogFormat string
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// Discovery is how agents and replicas are found: "builtin" (the registry in the
	// store, agents register through the API) or "consul". Default builtin.
	Discovery string
	// ConsulService is the Consul service the agents register under; ConsulTag, when set,
	// keeps only agents carrying that tag; ConsulReplicaService is the service replicas
	// register under. Defaults "tock-agent", none, "tock-replica".
	ConsulService, ConsulTag, ConsulReplicaService string
	// Profiling serves Go's runtime profiles under /debug/pprof/ on the HTTP address.
	// Default off.
	Profiling bool
	// ShutdownTimeout bounds a graceful stop. Default 30s.
	ShutdownTimeout time.Duration
}

// Defaults for Config.
const (
	DefaultDataDir    = ".tock"
	DefaultGRPCAddr   = "127.0.0.1:7400"
	DefaultHTTPAddr   = "127.0.0.1:7401"
	DefaultAppAddr    = "127.0.0.1:7403"
	DefaultReplicaTTL = 5 * time.Second
	DefaultLease      = 8 * time.Second
	DefaultLookahead  = 2 * time.Second
	DefaultRetention  = 7 * 24 * time.Hour
)

// Bounds of the durations a person sets.
const (
	minReplicaTTL = time.Second
	maxReplicaTTL = 10 * time.Minute
	minRetention  = time.Minute
	minLease      = time.Second
	maxLease      = 24 * time.Hour
	maxLookahead  = 10 * time.Second
)

// check reports the first flag out of bounds, as a usage error.
func (c Config) check() error {
	if c.ReplicaTTL < minReplicaTTL || c.ReplicaTTL > maxReplicaTTL {
		return usageError{fmt.Errorf("--replica-ttl %s: must be from %s to %s", c.ReplicaTTL, minReplicaTTL, maxReplicaTTL)}
	}
	if c.Lease < minLease || c.Lease > maxLease {
		return usageError{fmt.Errorf("--lease %s: must be from %s to %s", c.Lease, minLease, maxLease)}
	}
	if c.Lookahead < 0 || c.Lookahead > maxLookahead {
		return usageError{fmt.Errorf("--lookahead %s: must be from 0 to %s", c.Lookahead, maxLookahead)}
	}
	switch {
	case c.Discovery != "" && c.Discovery != discoveryBuiltin && c.Discovery != discoveryConsul:
		return usageError{fmt.Errorf("--discovery %q: want builtin or consul", c.Discovery)}
	case c.Dev && c.Discovery == discoveryConsul:
		return usageError{fmt.Errorf("--discovery consul: tockd dev runs its agent on the built-in registry; use tockd for Consul")}
	case c.Discovery == discoveryConsul && (c.ConsulService == "" || c.ConsulReplicaService == ""):
		return usageError{fmt.Errorf("--consul-service and --consul-replica-service must not be empty")}
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

// newLogger returns tockd's logger on stderr: JSON unless in dev mode or told otherwise, with
// the trace and span ids of the execution or request on the lines logged in its context.
func newLogger(format, level string, dev bool) (*slog.Logger, error) {
	return telemetry.NewLogger(os.Stderr, format, level, dev)
}
