package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Defaults for Config fields left zero.
const (
	DefaultService           = "default"
	DefaultWeight            = 1
	DefaultCapacity          = 16
	DefaultAppAddr           = "127.0.0.1:7403"
	DefaultHandlerRefresh    = 10 * time.Second
	DefaultRegistrationTTL   = 15 * time.Second
	DefaultResultBufferLimit = 10000
	DefaultDrainTimeout      = 30 * time.Second
	DefaultFinalTimeout      = 5 * time.Second
	DefaultDeadlineGrace     = 2 * time.Second
	DefaultSessionGrace      = 5 * time.Second
)

// Config configures an Agent. The zero value of every field means its default.
type Config struct {
	// ID is the agent's stable id, unique among the agents of a control plane.
	// Default: the host name and the listen port ("host:7402"), resolved when Serve starts.
	ID string
	// Service is the name of the service the agent sits next to; jobs select agents by it.
	// Default: "default".
	Service string
	// Labels are key-value pairs jobs can select agents on. Default: none.
	Labels map[string]string
	// Weight is the agent's weight for weighted balancing strategies; at least 1. Default: 1.
	Weight int
	// Capacity is the most executions the agent runs at once; at least 1. Default: 16.
	Capacity int
	// AppAddr is the local service's address: "host:port", or "unix:///path" for a unix
	// socket. Default: "127.0.0.1:7403".
	AppAddr string
	// AppToken, when set, is sent to the local service as "authorization: Bearer <AppToken>"
	// on every call. Default: empty, no token.
	AppToken string
	// HandlerRefresh is how often the agent asks the local service for its handlers.
	// Default: 10s.
	HandlerRefresh time.Duration
	// Logger receives the agent's log lines; payloads are never logged. Default: slog.Default().
	Logger *slog.Logger
	// Registry, when set, is where the agent registers itself so the control plane finds it.
	// Default: nil, no registration (the control plane discovers the agent some other way).
	Registry Registrar
	// Advertise is the address the control plane dials to reach the agent, as registered.
	// Default: the listener's address.
	Advertise string
	// RegistrationTTL is how long a registration lasts unless refreshed. Default: 15s.
	RegistrationTTL time.Duration
	// SessionGrace is how long after its session with a replica ends the agent still reports
	// itself ready to registries that track readiness (Consul's TTL check), so that a replica
	// reconnecting or taking over does not make the agent flap. Default: 5s.
	SessionGrace time.Duration
	// ResultBufferLimit is how many unacknowledged results the agent holds before it releases
	// new assignments with reason "result buffer full". Results are never dropped: the limit
	// only stops new work. Default: 10000.
	ResultBufferLimit int
	// DrainTimeout is how long, once Serve's context is done, running executions may keep
	// running before they are cancelled. Default: 30s.
	DrainTimeout time.Duration
	// FinalTimeout is how long, after the drain, the agent waits for the control plane to
	// acknowledge the last results before it stops. Default: 5s.
	FinalTimeout time.Duration
	// DeadlineGrace is how long after an execution's deadline the agent waits for the
	// service's result before it cancels the execution and records TIMED_OUT itself. It is
	// also how long a drain waits for cancelled executions to report. Default: 2s.
	DeadlineGrace time.Duration
	// ServerOptions are appended to the options of the agent's gRPC server, for example
	// credentials. Default: none.
	ServerOptions []grpc.ServerOption
	// AppDialOptions are appended to the options used to reach the local service.
	// Default: none (plaintext, which suits loopback and unix sockets).
	AppDialOptions []grpc.DialOption
	// Registerer, when set, receives the agent's Prometheus collectors (names prefixed
	// "tock_agent_"); New fails when they clash with collectors already registered.
	// Default: nil, no metrics.
	Registerer prometheus.Registerer
	// TracerProvider makes the agent's spans: one per execution and the gRPC spans of its
	// server and of its client to the local service. Default: nil, the global provider
	// (otel.GetTracerProvider), which makes no spans unless the process installs one.
	TracerProvider trace.TracerProvider
}

// withDefaults returns a copy of c with defaults filled in, or an error naming the first
// invalid field.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Weight >= 0, "weight must be at least 1, got %d", c.Weight)
	check(c.Capacity >= 0, "capacity must be at least 1, got %d", c.Capacity)
	check(c.HandlerRefresh >= 0, "handler refresh must not be negative, got %s", c.HandlerRefresh)
	check(c.RegistrationTTL >= 0, "registration TTL must not be negative, got %s", c.RegistrationTTL)
	check(c.SessionGrace >= 0, "session grace must not be negative, got %s", c.SessionGrace)
	check(c.ResultBufferLimit >= 0, "result buffer limit must not be negative, got %d", c.ResultBufferLimit)
	check(c.DrainTimeout >= 0, "drain timeout must not be negative, got %s", c.DrainTimeout)
	check(c.FinalTimeout >= 0, "final timeout must not be negative, got %s", c.FinalTimeout)
	check(c.DeadlineGrace >= 0, "deadline grace must not be negative, got %s", c.DeadlineGrace)
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("invalid agent config: %w", err)
	}

	c.Service = orDefault(c.Service, DefaultService)
	c.AppAddr = orDefault(c.AppAddr, DefaultAppAddr)
	c.Labels = maps.Clone(c.Labels)
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	setDefault(&c.Weight, DefaultWeight)
	setDefault(&c.Capacity, DefaultCapacity)
	setDefault(&c.HandlerRefresh, DefaultHandlerRefresh)
	setDefault(&c.RegistrationTTL, DefaultRegistrationTTL)
	setDefault(&c.SessionGrace, DefaultSessionGrace)
	setDefault(&c.ResultBufferLimit, DefaultResultBufferLimit)
	setDefault(&c.DrainTimeout, DefaultDrainTimeout)
	setDefault(&c.FinalTimeout, DefaultFinalTimeout)
	setDefault(&c.DeadlineGrace, DefaultDeadlineGrace)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	return c, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}
