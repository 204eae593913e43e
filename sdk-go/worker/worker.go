package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Version is the version of this SDK, reported to the agent as "tock-go/<Version>".
const Version = "0.1.0"

const (
	defaultShutdownTimeout = 10 * time.Second
	// gracefulStopTimeout bounds the wait for in-flight calls once every stream has ended.
	gracefulStopTimeout = 5 * time.Second
)

// ErrShutdown is the cause (see context.Cause) of a handler's context when the worker cancels
// it because Options.ShutdownTimeout passed during shutdown. Such an execution is reported as
// a retryable failure of kind "WorkerShutdown", so that it runs again elsewhere; a handler may
// check for it to save a checkpoint first.
var ErrShutdown = errors.New("worker shutting down")

// HandlerFunc runs one execution: it receives the execution's payload and returns its output.
// ctx carries the execution (see ExecutionFromContext) and its deadline, and is cancelled when
// the execution is cancelled.
type HandlerFunc func(ctx context.Context, payload []byte) ([]byte, error)

// Options configures a Worker.
type Options struct {
	// Token is a shared secret: when set, every call must carry the metadata
	// "authorization: Bearer <Token>" or it fails with Unauthenticated. Default: empty, which
	// accepts every call; listen on loopback or a unix socket then.
	Token string
	// ShutdownTimeout is how long running handlers may keep running once Serve's context is
	// done, before their contexts are cancelled. Default: 10s.
	ShutdownTimeout time.Duration
	// Logger receives the worker's own log lines; payloads are never logged.
	// Default: slog.Default().
	Logger *slog.Logger
	// ServerOptions are appended to the gRPC server's options, for example credentials.
	// Default: none.
	ServerOptions []grpc.ServerOption
	// Interceptors wrap every handler, the first outermost (see Interceptor). Default: none.
	Interceptors []Interceptor
}

// Worker serves registered handlers to a Tock agent. Create it with New, register handlers
// with Handle, then call Serve or ListenAndServe once.
type Worker struct {
	opts    Options
	log     *slog.Logger // the worker's own lines
	baseLog *slog.Logger // Options.Logger, for handlers' lines (see Logger)

	mu       sync.Mutex             // protects handlers, running, stopping, idle and served
	handlers map[string]ExecuteFunc // each wrapped in the interceptors
	running  int                    // handlers that have not returned, on every stream
	stopping bool                   // set once shutdown begins; new executions are refused
	idle     chan struct{}          // closed when stopping and running is zero
	served   bool                   // Serve was called

	// force is cancelled when ShutdownTimeout has passed after shutdown began; every
	// execution's context is cancelled with it.
	force       context.Context
	forceCancel context.CancelCauseFunc
	// endStreams is closed when every Execute stream must end.
	endStreams chan struct{}

	wg sync.WaitGroup // stream readers, each of which waits for its handlers
}

// New returns a Worker with no handlers.
func New(opts Options) *Worker {
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = defaultShutdownTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	force, forceCancel := context.WithCancelCause(context.Background())
	opts.Interceptors = slices.Clone(opts.Interceptors)
	return &Worker{
		opts:        opts,
		log:         log.With("component", "tock-worker"),
		baseLog:     log,
		handlers:    make(map[string]ExecuteFunc),
		idle:        make(chan struct{}),
		force:       force,
		forceCancel: forceCancel,
		endStreams:  make(chan struct{}),
	}
}

// Handle registers fn as the handler called name. Jobs refer to it by that name. fn receives
// the payload's bytes as they came; its output is reported as "application/json" when it
// parses as JSON and "application/octet-stream" otherwise. HandleTyped decodes and encodes
// for you.
//
// Handle panics when name is empty, when fn is nil, or when name is already registered: these
// are programming errors, found the first time the program runs. Handlers may be registered
// while the worker is serving; the agent sees them at its next handler refresh.
func (w *Worker) Handle(name string, fn HandlerFunc) {
	if fn == nil {
		panic(fmt.Sprintf("worker: Handle(%q) called with a nil HandlerFunc", name))
	}
	w.register(name, bytesHandler(fn))
}

// register wraps fn in the interceptors and records it as the handler called name.
func (w *Worker) register(name string, fn ExecuteFunc) {
	if name == "" {
		panic("worker: a handler was registered with an empty name")
	}
	h := chain(name, w.opts.Interceptors, fn)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.handlers[name]; dup {
		panic(fmt.Sprintf("worker: handler %q registered twice", name))
	}
	w.handlers[name] = h
}

// handlerNames returns the registered handler names, sorted.
func (w *Worker) handlerNames() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.handlers))
	for name := range w.handlers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// admission is why an execution may not run.
type admission int

const (
	admitted admission = iota
	refusedShuttingDown
	refusedUnknownHandler
)

// admit counts a new execution of handler as running, or says why it may not run.
func (w *Worker) admit(handler string) (ExecuteFunc, admission) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		return nil, refusedShuttingDown
	}
	fn, ok := w.handlers[handler]
	if !ok {
		return nil, refusedUnknownHandler
	}
	w.running++
	return fn, admitted
}

// finished records that an admitted execution's handler returned.
func (w *Worker) finished() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running--
	if w.stopping && w.running == 0 {
		close(w.idle)
	}
}

// beginStop refuses new executions and returns a channel closed once none is running.
func (w *Worker) beginStop() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopping {
		w.stopping = true
		if w.running == 0 {
			close(w.idle)
		}
	}
	return w.idle
}

// Serve serves the registered handlers on lis until ctx is done, then shuts down gracefully:
// new executions are refused, running handlers get up to Options.ShutdownTimeout to finish
// before their contexts are cancelled, and Serve returns once every handler has returned and
// its result has been sent. Serve closes lis. It returns nil after a shutdown caused by ctx,
// or the error that stopped the listener. A Worker serves only once.
func (w *Worker) Serve(ctx context.Context, lis net.Listener) error {
	w.mu.Lock()
	if w.served {
		w.mu.Unlock()
		_ = lis.Close()
		return errors.New("worker: Serve called more than once")
	}
	w.served = true
	w.mu.Unlock()

	srv := grpc.NewServer(w.serverOptions()...)
	handlerv1.RegisterHandlerServiceServer(srv, &service{w: w})

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	w.log.Info("serving handlers", "address", lis.Addr().String(), "handlers", w.handlerNames())

	select {
	case <-ctx.Done():
		w.log.Info("shutting down", "running", w.runningCount())
		w.shutdown(srv)
		<-serveErr // nil once the server is stopped
		return nil
	case err := <-serveErr:
		err = fmt.Errorf("serve handlers: %w", err)
		w.log.Error("serving failed; shutting down", "error", err)
		w.shutdown(srv)
		return err
	}
}

// shutdown refuses new work, waits for running handlers (cancelling them after the shutdown
// timeout), ends every stream and stops srv.
func (w *Worker) shutdown(srv *grpc.Server) {
	idle := w.beginStop()
	timer := time.NewTimer(w.opts.ShutdownTimeout)
	select {
	case <-idle:
		timer.Stop()
	case <-timer.C:
		w.log.Warn("shutdown timeout passed; cancelling running handlers", "running", w.runningCount())
		w.forceCancel(ErrShutdown)
		<-idle
	}
	close(w.endStreams)

	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(gracefulStopTimeout):
		srv.Stop()
		<-stopped
	}
	w.forceCancel(ErrShutdown)
	w.wg.Wait()
}

func (w *Worker) runningCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running
}

func (w *Worker) serverOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		// The agent pings every 10s to notice a dead service; let it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    30 * time.Second,
			Timeout: 10 * time.Second,
		}),
	}
	if w.opts.Token != "" {
		auth := tokenAuth{token: w.opts.Token}
		opts = append(opts,
			grpc.ChainUnaryInterceptor(auth.unary),
			grpc.ChainStreamInterceptor(auth.stream),
		)
	}
	return append(opts, w.opts.ServerOptions...)
}

// ListenAndServe listens on addr and calls Serve. addr is "host:port" for TCP or
// "unix:///path/to/socket" (also "unix:relative/path") for a unix socket. A stale socket file
// left by an earlier process is removed; a socket another process still serves is an error.
func (w *Worker) ListenAndServe(ctx context.Context, addr string) error {
	lis, err := Listen(addr)
	if err != nil {
		return err
	}
	return w.Serve(ctx, lis)
}

// Listen opens a listener for addr as ListenAndServe understands it.
func Listen(addr string) (net.Listener, error) {
	path, isUnix := strings.CutPrefix(addr, "unix://")
	if !isUnix {
		path, isUnix = strings.CutPrefix(addr, "unix:")
	}
	if !isUnix {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return lis, nil
	}
	if path == "" {
		return nil, fmt.Errorf("listen on %q: empty unix socket path", addr)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return lis, nil
}

// removeStaleSocket removes the socket file at path when no process accepts connections on it.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil // absent, or not a socket: let Listen report any problem
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = conn.Close()
		return fmt.Errorf("listen on unix socket %s: another process is serving it", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale unix socket %s: %w", path, err)
	}
	return nil
}
