package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Exit codes of the tock-agent command.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// appTokenEnv names the environment variable that supplies --app-token's default, so the token
// need not appear in the process list.
const appTokenEnv = "TOCK_APP_TOKEN"

// UsageError is a bad command line: tock-agent exits with ExitUsage.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitCode returns the process exit code for an error returned by Main.Run.
func ExitCode(err error) int {
	var uerr *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &uerr):
		return ExitUsage
	default:
		return ExitError
	}
}

// Main is the tock-agent command.
type Main struct {
	// Stderr receives usage text and logs. Default: os.Stderr.
	Stderr io.Writer
	// Getenv reads the environment. Default: os.Getenv.
	Getenv func(string) string
}

// NewMain returns the command wired to the process's stderr and environment.
func NewMain() *Main {
	return &Main{Stderr: os.Stderr, Getenv: os.Getenv}
}

// Values of --discovery.
const (
	discoveryBuiltin = "builtin"
	discoveryConsul  = "consul"
)

// metricsShutdownTimeout bounds the metrics server's shutdown.
const metricsShutdownTimeout = 2 * time.Second

// options are the parsed command line.
type options struct {
	listen        string
	register      string
	discovery     string
	consulService string
	metricsAddr   string
	logFormat     string
	logLevel      slog.Level
	cfg           Config
}

// Run parses args, starts the agent and serves until ctx is done (SIGINT or SIGTERM in the
// binary), then drains and returns. Bad flags return a *UsageError.
func (m *Main) Run(ctx context.Context, args []string) error {
	opts, err := m.parse(args)
	if err != nil {
		return err
	}
	log := newLogger(m.stderr(), opts.logFormat, opts.logLevel)
	cfg := opts.cfg
	cfg.Logger = log

	tp, err := tracerProviderFromEnv(ctx, m.getenv())
	if err != nil {
		return err
	}
	if tp != nil {
		cfg.TracerProvider = tp
		log.Info("exporting traces over OTLP", "protocol", otlpProtocol(m.getenv()))
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracerShutdownTimeout)
			defer cancel()
			if serr := tp.Shutdown(sctx); serr != nil {
				log.Warn("flushing traces failed", "error", serr)
			}
		}()
	}

	lis, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.listen, err)
	}
	served := false // Serve closes lis
	defer func() {
		if !served {
			_ = lis.Close()
		}
	}()
	if cfg.ID == "" {
		cfg.ID = DefaultID(lis.Addr().String())
	}
	if cfg.Advertise == "" {
		cfg.Advertise = lis.Addr().String()
		if host, _, _ := net.SplitHostPort(cfg.Advertise); net.ParseIP(host).IsUnspecified() {
			log.Warn("the advertised address is unspecified; set --advertise to an address the control plane can dial",
				"advertise", cfg.Advertise)
		}
	}

	switch {
	case opts.discovery == discoveryConsul:
		reg, err := NewConsulRegistrar(ConsulConfig{ServiceName: opts.consulService, Logger: log})
		if err != nil {
			return err
		}
		defer reg.Close()
		cfg.Registry = reg
	case opts.register != "":
		conn, err := grpc.NewClient("passthrough:///"+opts.register,
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("set up registry client for %s: %w", opts.register, err)
		}
		defer func() { _ = conn.Close() }()
		cfg.Registry = NewGRPCRegistrar(conn)
	}

	var gatherer prometheus.Gatherer
	if opts.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer, gatherer = reg, reg
	}

	a, err := New(cfg)
	if err != nil {
		return err
	}
	if gatherer != nil {
		stop, err := serveMetrics(opts.metricsAddr, a.httpHandler(gatherer), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	served = true
	return a.Serve(ctx, lis)
}

// serveMetrics serves h on addr until stop is called.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server failed", "error", err)
		}
	}()
	log.Info("serving metrics", "address", lis.Addr().String(), "paths", "/metrics /healthz")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}

func (m *Main) stderr() io.Writer {
	if m.Stderr == nil {
		return os.Stderr
	}
	return m.Stderr
}

func (m *Main) getenv() func(string) string {
	if m.Getenv == nil {
		return os.Getenv
	}
	return m.Getenv
}

// parse reads the command line.
func (m *Main) parse(args []string) (*options, error) {
	stderr, getenv := m.stderr(), m.getenv()

	fs := flag.NewFlagSet("tock-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tock-agent [flags]\n\n"+
			"tock-agent runs next to a service and runs its handlers for the Tock control plane.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), envHelp)
	}

	var o options
	var labels, logLevel string
	var weight, capacity int
	fs.StringVar(&o.listen, "listen", "127.0.0.1:7402", "`address` (host:port) where the agent serves the control plane")
	fs.StringVar(&o.cfg.Advertise, "advertise", "", "`address` the control plane dials to reach the agent (default: the listen address)")
	fs.StringVar(&o.cfg.AppAddr, "app-addr", DefaultAppAddr, "`address` of the local service: host:port or unix:///path")
	fs.StringVar(&o.cfg.AppToken, "app-token", getenv(appTokenEnv), "shared `token` sent to the local service (default: $"+appTokenEnv+")")
	fs.StringVar(&o.cfg.Service, "service", DefaultService, "`name` of the service the agent sits next to")
	fs.StringVar(&labels, "labels", "", "labels jobs can select on, as `k=v,k=v`")
	fs.IntVar(&weight, "weight", DefaultWeight, "`weight` for weighted balancing strategies (at least 1)")
	fs.IntVar(&capacity, "capacity", DefaultCapacity, "most executions run at once (at least 1)")
	fs.StringVar(&o.cfg.ID, "id", "", "stable agent `id` (default: host name and listen port)")
	fs.StringVar(&o.discovery, "discovery", discoveryBuiltin, "how the control plane finds the agent (`mode`): builtin registers with the control plane at --register;\n"+
		"consul registers with the local Consul agent, configured by the CONSUL_* environment below (--register is not used)")
	fs.StringVar(&o.register, "register", "127.0.0.1:7400", "control plane gRPC `address` for builtin registration; empty disables registration")
	fs.StringVar(&o.consulService, "consul-service", DefaultConsulServiceName, "Consul service `name` to register under with --discovery consul (the control plane watches it)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "`address` (host:port) serving Prometheus /metrics and /healthz; empty: no metrics (e.g. 127.0.0.1:7404)")
	fs.DurationVar(&o.cfg.RegistrationTTL, "register-ttl", DefaultRegistrationTTL, "how long a registration lasts unless refreshed (1s to 10m)")
	fs.DurationVar(&o.cfg.DrainTimeout, "drain-timeout", DefaultDrainTimeout, "how long running executions may finish after SIGTERM before they are cancelled")
	fs.StringVar(&o.logFormat, "log-format", "text", "log `format`: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log `level`: debug, info, warn or error")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}

	switch o.discovery {
	case discoveryBuiltin:
	case discoveryConsul:
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "register" })
		if set {
			return nil, usageErrorf("--register is for --discovery builtin; with consul the agent registers with the Consul agent named by CONSUL_HTTP_ADDR")
		}
		o.register = ""
		if o.consulService == "" {
			return nil, usageErrorf("--consul-service must not be empty")
		}
	default:
		return nil, usageErrorf("--discovery %q: want builtin or consul", o.discovery)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return nil, usageErrorf("--log-format %q: want text or json", o.logFormat)
	}
	if err := o.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", logLevel)
	}
	if weight < 1 {
		return nil, usageErrorf("--weight %d: must be at least 1", weight)
	}
	if capacity < 1 {
		return nil, usageErrorf("--capacity %d: must be at least 1", capacity)
	}
	o.cfg.Weight, o.cfg.Capacity = weight, capacity
	if o.cfg.RegistrationTTL < time.Second || o.cfg.RegistrationTTL > 10*time.Minute {
		return nil, usageErrorf("--register-ttl %s: must be from 1s to 10m", o.cfg.RegistrationTTL)
	}
	if o.cfg.DrainTimeout <= 0 {
		return nil, usageErrorf("--drain-timeout %s: must be positive", o.cfg.DrainTimeout)
	}
	if err := checkHostPort("--listen", o.listen, false); err != nil {
		return nil, err
	}
	if o.cfg.Advertise != "" {
		if err := checkHostPort("--advertise", o.cfg.Advertise, true); err != nil {
			return nil, err
		}
	}
	if o.register != "" {
		if err := checkHostPort("--register", o.register, true); err != nil {
			return nil, err
		}
	}
	if o.metricsAddr != "" {
		if err := checkHostPort("--metrics-addr", o.metricsAddr, false); err != nil {
			return nil, err
		}
	}
	if !strings.HasPrefix(o.cfg.AppAddr, "unix:") {
		if err := checkHostPort("--app-addr", o.cfg.AppAddr, true); err != nil {
			return nil, err
		}
	} else if strings.TrimPrefix(strings.TrimPrefix(o.cfg.AppAddr, "unix:"), "//") == "" {
		return nil, usageErrorf("--app-addr %q: empty unix socket path", o.cfg.AppAddr)
	}
	if o.cfg.Service == "" {
		return nil, usageErrorf("--service must not be empty")
	}
	var err error
	if o.cfg.Labels, err = parseLabels(labels); err != nil {
		return nil, &UsageError{Err: fmt.Errorf("--labels: %w", err)}
	}
	return &o, nil
}

// checkHostPort reports a usage error unless addr is host:port (with a host when needHost).
func checkHostPort(flagName, addr string, needHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("%s %q: want host:port", flagName, addr)
	}
	if port == "" || (needHost && host == "") {
		return usageErrorf("%s %q: want host:port", flagName, addr)
	}
	return nil
}

// parseLabels parses "k=v,k=v". Keys must be non-empty and unique.
func parseLabels(s string) (map[string]string, error) {
	labels := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return labels, nil
	}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", pair)
		}
		if _, dup := labels[k]; dup {
			return nil, fmt.Errorf("label %q given twice", k)
		}
		labels[k] = v
	}
	return labels, nil
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
