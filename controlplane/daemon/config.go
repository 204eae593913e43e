package daemon

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is tockd's configuration, from its flags.
type Config struct {
	// Dev runs the development server: an agent in the same process, text logs.
	Dev bool
	// DataDir holds the embedded SQLite database. Default ".tock".
	DataDir string
	// Store is the database: "sqlite:///path/to/file.db" (or a bare path). Default: SQLite in
	// DataDir.
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
	// LogFormat is "text" or "json". Default: text in dev mode, json otherwise.
	LogFormat string
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// ShutdownTimeout bounds a graceful stop. Default 30s.
	ShutdownTimeout time.Duration
}

// Defaults for Config.
const (
	DefaultDataDir  = ".tock"
	DefaultGRPCAddr = "127.0.0.1:7400"
	DefaultHTTPAddr = "127.0.0.1:7401"
	DefaultAppAddr  = "127.0.0.1:7403"
)

func defaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "tockd"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// storeTarget is a parsed --store value.
type storeTarget struct {
	// kind is "sqlite".
	kind string
	// path is the SQLite file.
	path string
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
		return storeTarget{}, fmt.Errorf("--store %q is not a URL: %w", redact(raw), err)
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
	default:
		return storeTarget{}, fmt.Errorf("--store scheme %q is not supported; use sqlite:///path/to/tock.db", u.Scheme)
	}
}

// redact hides a password in a connection URL, for error messages and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
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
