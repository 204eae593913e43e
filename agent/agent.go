package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// Version is the agent's version, reported in Hello.
var Version = "0.1.0-dev"

// stopTimeout bounds the graceful stop of the gRPC server once every session has ended.
const stopTimeout = 5 * time.Second

// Agent is the sidecar: it serves AgentService to its owning replica and runs executions on
// the local service. Create it with New and run it with Serve.
type Agent struct {
	cfg       Config
	log       *slog.Logger
	metrics   *metrics
	tracer    trace.Tracer
	appClient handlerv1.HandlerServiceClient // set by Serve before any goroutine starts

	mu       sync.Mutex // protects every field below
	id       string
	served   bool                  // Serve was called
	closed   bool                  // sessions are no longer accepted
	session  *session              // the live session, nil when none
	running  map[string]*execution // by execution id
	results  *resultBuffer         // unacknowledged results
	handlers []string              // the local service's handlers, sorted
	svc      *serviceStream        // the live Execute stream, nil while the service is down
	svcGen   uint64                // generation of the newest Execute stream
	draining bool
	changed  chan struct{} // closed and replaced whenever running or results shrink
	// sessionEnded is when the last session ended; zero before the first one.
	sessionEnded time.Time

	// regChanged receives a value when something a registration carries changes (the
	// handler list, the session, the service's reachability, draining), so the registration
	// is refreshed at once.
	regChanged chan struct{}

	wg sync.WaitGroup // background goroutines and session readers
}

// New returns an Agent configured by cfg, or an error when cfg is invalid.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "tock-agent"),
		tracer:     cfg.TracerProvider.Tracer(tracerName, trace.WithInstrumentationVersion(Version)),
		id:         cfg.ID,
		running:    make(map[string]*execution),
		results:    newResultBuffer(),
		changed:    make(chan struct{}),
		regChanged: make(chan struct{}, 1),
	}
	if a.metrics, err = newMetrics(a, cfg.Registerer); err != nil {
		return nil, err
	}
	return a, nil
}

// ID returns the agent's id. When Config.ID is empty, the id is known once Serve has started.
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

// Running returns how many executions the agent is running.
func (a *Agent) Running() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.running)
}

// PendingResults returns how many results await the control plane's acknowledgement.
func (a *Agent) PendingResults() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.results.len()
}

// Draining reports whether the agent is draining.
func (a *Agent) Draining() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.draining
}

// ServiceHealthy reports whether the agent has a working stream to the local service.
func (a *Agent) ServiceHealthy() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.svc != nil
}

// Handlers returns the handlers the local service last reported, sorted.
func (a *Agent) Handlers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.handlers)
}

// SessionEpoch returns the epoch of the live session; false when there is none.
func (a *Agent) SessionEpoch() (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session == nil {
		return 0, false
	}
	return a.session.epoch, true
}

// Serve serves AgentService on lis and runs executions on the local service until ctx is
// done, then drains (see the package documentation), deregisters and returns. Serve closes
// lis. It returns nil after a shutdown caused by ctx, or the error that stopped the listener.
// An Agent serves only once.
func (a *Agent) Serve(ctx context.Context, lis net.Listener) error {
	a.mu.Lock()
	if a.served {
		a.mu.Unlock()
		return errors.New("agent: Serve called more than once")
	}
	a.served = true
	if a.id == "" {
		a.id = DefaultID(lis.Addr().String())
	}
	a.mu.Unlock()

	app, err := grpc.NewClient(appTarget(a.cfg.AppAddr), a.appDialOptions()...)
	if err != nil {
		_ = lis.Close()
		return fmt.Errorf("set up client for local service %s: %w", a.cfg.AppAddr, err)
	}
	defer func() { _ = app.Close() }()
	a.appClient = handlerv1.NewHandlerServiceClient(app)

	srv := grpc.NewServer(a.serverOptions()...)
	agentv1.RegisterAgentServiceServer(srv, &agentServer{a: a})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)

	// Background work outlives ctx: it keeps running through the drain.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	a.wg.Go(func() { a.runService(bg) })
	a.wg.Go(func() { a.refreshHandlers(bg) })

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()

	advertise := a.cfg.Advertise
	if advertise == "" {
		advertise = lis.Addr().String()
	}
	regCtx, stopReg := context.WithCancel(bg)
	defer stopReg()
	var reg sync.WaitGroup
	if a.cfg.Registry != nil {
		reg.Go(func() { a.runRegistration(regCtx, advertise) })
	}
	a.log.Info("agent serving", "agent_id", a.ID(), "address", lis.Addr().String(),
		"advertise", advertise, "service", a.cfg.Service, "app_addr", a.cfg.AppAddr,
		"capacity", a.cfg.Capacity)

	var result error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		serveErr = nil
		result = fmt.Errorf("serve agent: %w", err)
		a.log.Error("serving failed; shutting down", "error", err)
	}

	hs.Shutdown()
	a.drain()
	stopReg()
	reg.Wait()
	if a.cfg.Registry != nil {
		a.deregister(ctx)
	}
	a.closeSessions()
	stopServer(srv)
	if serveErr != nil {
		<-serveErr
	}
	stopBG()
	a.wg.Wait()
	a.log.Info("agent stopped", "unacknowledged_results", a.PendingResults())
	return result
}

// drain stops taking work, lets running executions finish for up to DrainTimeout, cancels
// the rest, and waits up to FinalTimeout for every result to be acknowledged.
func (a *Agent) drain() {
	a.mu.Lock()
	a.draining = true
	n := len(a.running)
	a.registrationChangedLocked()
	a.mu.Unlock()
	a.log.Info("draining", "running", n, "drain_timeout", a.cfg.DrainTimeout)

	noneRunning := func() bool { return len(a.running) == 0 }
	if !a.waitUntil(time.Now().Add(a.cfg.DrainTimeout), noneRunning) {
		a.mu.Lock()
		a.log.Warn("drain timeout passed; cancelling running executions", "running", len(a.running))
		for _, ex := range a.running {
			ex.shutdownCancel = true
			a.cancelLocked(ex, "the agent is shutting down")
		}
		a.mu.Unlock()
		if !a.waitUntil(time.Now().Add(a.cfg.DeadlineGrace), noneRunning) {
			a.abandonRunning()
		}
	}
	if !a.waitUntil(time.Now().Add(a.cfg.FinalTimeout), func() bool { return a.results.len() == 0 }) {
		a.log.Warn("stopping with unacknowledged results", "results", a.PendingResults())
	}
}

// abandonRunning records a retryable failure for every execution the service did not end
// after it was cancelled, so that the control plane can run them again.
func (a *Agent) abandonRunning() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	var rs []*agentv1.Result
	for _, ex := range sortedExecutions(a.running) {
		rs = append(rs, a.completeLocked(ex, failedResult(kindAgentShutdown,
			"the agent shut down before the service reported a result", true), now))
	}
	a.reportLocked(rs)
}

// waitUntil waits until cond, called with a.mu held, is true or deadline passes; it reports
// whether cond became true.
func (a *Agent) waitUntil(deadline time.Time, cond func() bool) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		a.mu.Lock()
		ok := cond()
		changed := a.changed
		a.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-timer.C:
			return false
		}
	}
}

// notifyLocked wakes every waitUntil.
func (a *Agent) notifyLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// closeSessions ends the live session and refuses new ones.
func (a *Agent) closeSessions() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.session != nil {
		a.session.end(nil)
	}
}

// stopServer stops srv gracefully, or forcibly when that takes too long.
func stopServer(srv *grpc.Server) {
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		srv.Stop()
		<-stopped
	}
}

func (a *Agent) serverOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.StatsHandler(serverStatsHandler(a.cfg.TracerProvider)),
		// Replicas ping every 10s to notice a dead agent quickly; permit it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    10 * time.Second,
			Timeout: 5 * time.Second,
		}),
	}
	return append(opts, a.cfg.ServerOptions...)
}

// DefaultID is the agent id used when none is configured: the host name and the port of
// listenAddr, such as "web-1:7402".
func DefaultID(listenAddr string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	_, port, err := net.SplitHostPort(listenAddr)
	if err != nil || port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}
