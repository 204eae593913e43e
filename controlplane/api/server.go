package api

import (
	"context"
	"encoding/base64"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/telemetry"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// Waker is told when new work may be ready, so that it looks now rather than at its next
// poll.
type Waker interface {
	Wake()
}

// Config tunes the API.
type Config struct {
	// RegistryTTLMax bounds the TTL an agent may register with. Default 10m.
	RegistryTTLMax time.Duration
	// Logger receives errors that are not the caller's. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider makes the trigger spans that start the traces of executions created
	// through the API. Default: none (those executions get no trace context).
	TracerProvider trace.TracerProvider
}

// Server implements the control plane's gRPC services.
type Server struct {
	cfg        Config
	store      store.Store
	scheduler  Waker
	dispatcher Waker
	tracer     trace.Tracer

	jobs       *jobService
	executions *executionService
	agents     *agentService
	registry   *registryService
	schedules  *scheduleService
}

// New returns a Server over st that wakes the scheduler when jobs change and the dispatcher
// when executions are created.
func New(cfg Config, st store.Store, scheduler, dispatcher Waker) *Server {
	if cfg.RegistryTTLMax <= 0 {
		cfg.RegistryTTLMax = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, store: st, scheduler: scheduler, dispatcher: dispatcher, tracer: telemetry.Tracer(cfg.TracerProvider)}
	s.jobs = &jobService{s: s}
	s.executions = &executionService{s: s}
	s.agents = &agentService{s: s}
	s.registry = &registryService{s: s}
	s.schedules = &scheduleService{s: s}
	return s
}

// Register registers every service on g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	tockv1.RegisterJobServiceServer(g, s.jobs)
	tockv1.RegisterExecutionServiceServer(g, s.executions)
	tockv1.RegisterAgentServiceServer(g, s.agents)
	agentv1.RegisterRegistryServiceServer(g, s.registry)
	tockv1.RegisterScheduleServiceServer(g, s.schedules)
}

func (s *Server) status(op string, err error, object string) error {
	return toStatus(s.cfg.Logger, op, err, object)
}

func (s *Server) now(ctx context.Context) (time.Time, error) {
	return s.store.Now(ctx)
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func pageSize(n int32) (int, error) {
	switch {
	case n < 0 || n > maxPageSize:
		return 0, invalid("page_size", "must be between 1 and %d, got %d", maxPageSize, n)
	case n == 0:
		return defaultPageSize, nil
	}
	return int(n), nil
}

// Page tokens are opaque to clients: the base64 of the cursor of the last item returned.
func encodeToken(cursor string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursor))
}

func decodeToken(token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", invalid("page_token", "is not a token returned by this API")
	}
	return string(b), nil
}
