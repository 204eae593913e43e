package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/tockhq/tock/agent"
	"github.com/tockhq/tock/controlplane/api"
	"github.com/tockhq/tock/controlplane/dispatch"
	"github.com/tockhq/tock/controlplane/retention"
	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/telemetry"
)

// Run runs a tockd replica (and, in dev mode, its agent) until ctx is done, then stops
// gracefully: the agent drains, the dispatcher and scheduler stop, the servers finish their
// requests, and the store closes.
func Run(ctx context.Context, cfg Config) error {
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, cfg.Dev)
	if err != nil {
		return usageError{err}
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = defaultReplicaID()
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if err := cfg.check(); err != nil {
		return err
	}
	tracing, err := startTracing(ctx, cfg, log)
	if err != nil {
		return usageError{err}
	}
	defer stopTracing(ctx, tracing, log)
	tp := tracing.Provider
	target, err := parseStore(cfg.Store, cfg.DataDir)
	if err != nil {
		return usageError{err}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		telemetry.NewBuildInfo())
	st, err := openStore(ctx, target, reg)
	if err != nil {
		return fmt.Errorf("open store %s: %w", target, err)
	}
	defer st.Close()
	log.Info("store opened", "store", target.String())
	if cfg.Lease < cfg.ReplicaTTL+2*time.Second {
		log.Warn("--lease is not a few seconds above --replica-ttl: executions running on a dead replica's agents may be retried before the agents are taken over",
			"lease", cfg.Lease.String(), "replica_ttl", cfg.ReplicaTTL.String())
	}

	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen for gRPC on %s (is another tockd running? use --grpc-addr): %w", cfg.GRPCAddr, err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("listen for HTTP on %s (use --http-addr): %w", cfg.HTTPAddr, err)
	}

	advertise := cfg.AdvertiseAddr
	if advertise == "" {
		advertise = grpcLis.Addr().String()
	}
	disc, err := openDiscovery(cfg, st, log)
	if err != nil {
		grpcLis.Close()
		httpLis.Close()
		return usageError{err}
	}
	// The watches outlive the dispatcher, which stops last: it deregisters this replica.
	disc.start(context.WithoutCancel(ctx))
	defer disc.stop()
	disp := dispatch.New(dispatch.Config{
		ReplicaID:    cfg.ReplicaID,
		Address:      advertise,
		Replicas:     disc.replicas,
		ReplicaTTL:   cfg.ReplicaTTL,
		Lease:        cfg.Lease,
		Lookahead:    lookahead(cfg.Lookahead),
		MirrorAgents: disc.mirror,
		Registerer:   reg,
		Logger:       log,

		TracerProvider: tp,
	}, st, disc.agents)
	sched := scheduler.New(scheduler.Config{
		// Fires are recorded ahead of the dispatcher's lookahead, so that their executions
		// exist when it looks, even for the ten thousand jobs of one busy cron minute.
		Horizon: cfg.Lookahead + 2*time.Second,
		Logger:  log, TracerProvider: tp, Registerer: reg,
	}, st, disp.OnFires)
	pruner := retention.New(retention.Config{Retention: cfg.Retention, Registerer: reg, Logger: log}, st)

	grpcSrv := grpc.NewServer(
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.StatsHandler(telemetry.GRPCServerHandler(tp)),
	)
	api.New(api.Config{Logger: log, TracerProvider: tp}, st, sched, disp).Register(grpcSrv)

	// The REST gateway calls the gRPC API over loopback, so both share one code path.
	gwConn, err := grpc.NewClient(grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(telemetry.GRPCClientHandler(tp)))
	if err != nil {
		return fmt.Errorf("connect gateway to gRPC API: %w", err)
	}
	defer gwConn.Close()
	gateway, err := api.NewGateway(ctx, gwConn)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: httpMux(gateway, reg, st, cfg.Profiling), ReadHeaderTimeout: 10 * time.Second}

	// The servers, scheduler and dispatcher run until the development agent has drained, so
	// that the results it delivers while draining are still recorded; they get a context of
	// their own rather than ctx.
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	g, gctx := errgroup.WithContext(svcCtx)
	g.Go(func() error {
		if err := grpcSrv.Serve(grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve gRPC: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := httpSrv.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve HTTP: %w", err)
		}
		return nil
	})
	sched.Start(svcCtx)
	disp.Start(svcCtx)
	pruner.Start(svcCtx)

	// stopCtx ends on a signal or when a server fails.
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		<-gctx.Done()
		stop()
	}()
	agentDone := make(chan error, 1)
	if cfg.Dev {
		if err := startDevAgent(stopCtx, cfg, log, grpcLis.Addr().String(), agentDone, devAgentTelemetry{tp, reg}); err != nil {
			stop()
			stopServices()
			disp.Stop()
			sched.Stop()
			pruner.Stop()
			grpcSrv.Stop()
			_ = httpSrv.Close()
			_ = g.Wait()
			return err
		}
	} else {
		close(agentDone)
	}
	log.Info("tockd started", "replica", cfg.ReplicaID, "grpc", grpcLis.Addr().String(),
		"http", "http://"+httpLis.Addr().String(), "dev", cfg.Dev, "retention", cfg.Retention.String(), "replica_ttl", cfg.ReplicaTTL.String())

	<-stopCtx.Done()
	log.Info("tockd stopping")
	if err := <-agentDone; err != nil {
		log.Warn("development agent", "err", err)
	}
	// The dispatcher deregisters this replica first, so that the others take its agents at
	// once, then closes its sessions.
	disp.Stop()
	sched.Stop()
	pruner.Stop()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	_ = httpSrv.Shutdown(shutdownCtx)
	stopped := make(chan struct{})
	go func() {
		grpcSrv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-shutdownCtx.Done():
		grpcSrv.Stop()
	}
	stopServices()
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info("tockd stopped")
	return nil
}

// startDevAgent runs the development agent on a loopback port, registered with this
// replica's built-in registry. agentDone receives its result when it has drained.
func startDevAgent(ctx context.Context, cfg Config, log *slog.Logger, grpcAddr string, agentDone chan<- error, tel devAgentTelemetry) error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the development agent: %w", err)
	}
	regConn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		lis.Close()
		return fmt.Errorf("connect development agent to registry: %w", err)
	}
	a, err := agent.New(agent.Config{
		ID:           "dev-agent",
		Service:      cfg.AgentService,
		Capacity:     cfg.AgentCapacity,
		AppAddr:      cfg.AppAddr,
		Registry:     agent.NewGRPCRegistrar(regConn),
		Logger:       log,
		DrainTimeout: cfg.ShutdownTimeout / 2,

		TracerProvider: tel.tp,
		Registerer:     tel.reg,
	})
	if err != nil {
		lis.Close()
		regConn.Close()
		return fmt.Errorf("start development agent: %w", err)
	}
	go func() {
		defer regConn.Close()
		agentDone <- a.Serve(ctx, lis)
	}()
	log.Info("development agent started", "address", lis.Addr().String(), "app", cfg.AppAddr)
	return nil
}

func httpMux(gateway http.Handler, reg *prometheus.Registry, st store.Store, profiling bool) http.Handler {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/v1/", withTraceContext(gateway))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := st.Now(ctx); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// lookahead converts --lookahead to the dispatcher's setting, where 0 means its default.
func lookahead(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
