package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/agent"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"github.com/tockhq/tock/sdk-go/worker"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

// waitFor bounds every wait in these tests.
const waitFor = 10 * time.Second

// tick is the polling interval of require.Eventually.
const tick = 5 * time.Millisecond

func testLogger() *slog.Logger {
	if os.Getenv("TOCK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// env is a real agent in front of a real worker, both on loopback.
type env struct {
	t     *testing.T
	agent *agent.Agent
	conn  *grpc.ClientConn // to the agent
	app   *flakyListener   // the worker's listener
	w     *worker.Worker

	stopAgent   context.CancelFunc
	agentServed chan error

	releaseOnce sync.Once
	release     chan struct{} // closed to let "block" handlers return
	blocked     chan string   // receives the execution id of each "block" handler that starts
	waiting     chan string   // receives the execution id of each "wait" handler that starts
}

// setup starts a worker with the test handlers and an agent in front of it; mutate adjusts
// the agent's config.
func setup(t *testing.T, mutate func(*agent.Config)) *env {
	t.Helper()
	e := &env{
		t:       t,
		release: make(chan struct{}),
		blocked: make(chan string, 100),
		waiting: make(chan string, 100),
	}

	appLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.app = newFlakyListener(appLis)
	e.w = worker.New(worker.Options{Logger: testLogger(), ShutdownTimeout: waitFor})
	e.registerHandlers()
	workerCtx, stopWorker := context.WithCancel(context.Background())
	workerServed := make(chan error, 1)
	go func() { workerServed <- e.w.Serve(workerCtx, e.app) }()

	cfg := agent.Config{
		ID:             "agent-1",
		Service:        "billing",
		Labels:         map[string]string{"zone": "eu-1"},
		Weight:         2,
		Capacity:       4,
		AppAddr:        appLis.Addr().String(),
		HandlerRefresh: 50 * time.Millisecond,
		Logger:         testLogger(),
		DrainTimeout:   300 * time.Millisecond,
		FinalTimeout:   200 * time.Millisecond,
		DeadlineGrace:  100 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := agent.New(cfg)
	require.NoError(t, err)
	e.agent = a
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	agentCtx, stopAgent := context.WithCancel(context.Background())
	e.stopAgent = stopAgent
	e.agentServed = make(chan error, 1)
	go func() { e.agentServed <- a.Serve(agentCtx, lis) }()

	e.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)

	t.Cleanup(func() {
		e.releaseBlocked()
		_ = e.conn.Close()
		stopAgent()
		select {
		case err := <-e.agentServed:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Error("agent did not stop")
		}
		stopWorker()
		select {
		case err := <-workerServed:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Error("worker did not stop")
		}
	})
	return e
}

// waitHealthy waits until the agent has a stream to the worker.
func (e *env) waitHealthy() {
	e.t.Helper()
	require.Eventually(e.t, e.agent.ServiceHealthy, waitFor, tick, "agent never reached the service")
}

func (e *env) releaseBlocked() { e.releaseOnce.Do(func() { close(e.release) }) }

// registerHandlers adds the handlers the tests use.
func (e *env) registerHandlers() {
	e.w.Handle("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	// wait honours cancellation and deadlines.
	e.w.Handle("wait", func(ctx context.Context, _ []byte) ([]byte, error) {
		ex, _ := worker.ExecutionFromContext(ctx)
		e.waiting <- ex.ID
		<-ctx.Done()
		return nil, ctx.Err()
	})
	// block ignores its context and returns only when the test releases it.
	e.w.Handle("block", func(ctx context.Context, _ []byte) ([]byte, error) {
		ex, _ := worker.ExecutionFromContext(ctx)
		e.blocked <- ex.ID
		<-e.release
		return []byte(`"released"`), nil
	})
	e.w.Handle("fail", func(context.Context, []byte) ([]byte, error) {
		return nil, &worker.Error{Kind: "Deliberate", Message: "always fails", RetryAfter: 3 * time.Second}
	})
	e.w.Handle("info", func(ctx context.Context, _ []byte) ([]byte, error) {
		ex, _ := worker.ExecutionFromContext(ctx)
		return json.Marshal(ex)
	})
	// trace returns the trace context the handler runs under, as the agent sent it.
	e.w.Handle("trace", func(ctx context.Context, _ []byte) ([]byte, error) {
		sc := trace.SpanContextFromContext(ctx)
		return json.Marshal(map[string]string{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()})
	})
	e.w.Handle("chatty", func(ctx context.Context, _ []byte) ([]byte, error) {
		worker.Progress(ctx, 0.5, "halfway")
		worker.Logf(ctx, slog.LevelWarn, "low on %s", "disk")
		return []byte("{}"), nil
	})
}

// replica drives one Connect stream the way the owning replica does.
type replica struct {
	t      *testing.T
	stream agentv1.AgentService_ConnectClient
	cancel context.CancelFunc

	msgs    chan *agentv1.ConnectResponse // filled by the receiving goroutine
	recvErr chan error                    // the error that ended the stream
	pending []*agentv1.ConnectResponse    // received, not yet consumed
	results map[string]*agentv1.Result    // received results not yet consumed, by execution id
}

// connect opens a session with the given epoch and returns it with the agent's Hello.
func (e *env) connect(epoch int64) (*replica, *agentv1.Hello) {
	e.t.Helper()
	r, err := e.tryConnect(epoch)
	require.NoError(e.t, err)
	m := r.next(func(m *agentv1.ConnectResponse) bool { return m.GetHello() != nil })
	return r, m.GetHello()
}

// tryConnect opens a session and returns the stream without waiting for Hello.
func (e *env) tryConnect(epoch int64) (*replica, error) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := agentv1.NewAgentServiceClient(e.conn).Connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	r := &replica{
		t:       e.t,
		stream:  stream,
		cancel:  cancel,
		msgs:    make(chan *agentv1.ConnectResponse, 1000),
		recvErr: make(chan error, 1),
		results: map[string]*agentv1.Result{},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := stream.Recv()
			if err != nil {
				r.recvErr <- err
				return
			}
			r.msgs <- m
		}
	}()
	e.t.Cleanup(func() { r.cancel(); <-done })
	r.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Open{Open: &agentv1.Open{
		ReplicaId:         "replica-a",
		SessionEpoch:      epoch,
		HeartbeatInterval: durationpb.New(20 * time.Millisecond),
	}}})
	return r, nil
}

func (r *replica) send(m *agentv1.ConnectRequest) {
	r.t.Helper()
	require.NoError(r.t, r.stream.Send(m))
}

func (r *replica) assign(asgs ...*agentv1.Assignment) {
	r.t.Helper()
	r.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Assign{Assign: &agentv1.Assign{Assignments: asgs}}})
}

func (r *replica) cancelExecution(id string, epoch int64) {
	r.t.Helper()
	r.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Cancel{Cancel: &agentv1.CancelExecution{
		ExecutionId: id, LeaseEpoch: epoch, Reason: "operator asked",
	}}})
}

func (r *replica) ack(results ...*agentv1.Result) {
	r.t.Helper()
	acks := make([]*agentv1.ResultAck, len(results))
	for i, res := range results {
		acks[i] = &agentv1.ResultAck{ExecutionId: res.GetExecutionId(), LeaseEpoch: res.GetLeaseEpoch(), Applied: true}
	}
	r.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Ack{Ack: &agentv1.Ack{Results: acks}}})
}

// receive returns the next message from the agent.
func (r *replica) receive() *agentv1.ConnectResponse {
	r.t.Helper()
	select {
	case m := <-r.msgs:
		for _, res := range m.GetResults().GetResults() {
			r.results[res.GetExecutionId()] = res
		}
		return m
	case err := <-r.recvErr:
		r.recvErr <- err
		r.t.Fatalf("session ended: %v", err)
	case <-time.After(waitFor):
		r.t.Fatal("timed out waiting for a message from the agent")
	}
	return nil
}

// next returns the first message, received earlier or later, that match accepts. Messages
// that do not match are kept for later calls.
func (r *replica) next(match func(*agentv1.ConnectResponse) bool) *agentv1.ConnectResponse {
	r.t.Helper()
	for i, m := range r.pending {
		if match(m) {
			r.pending = append(r.pending[:i:i], r.pending[i+1:]...)
			return m
		}
	}
	deadline := time.Now().Add(waitFor)
	for {
		m := r.receive()
		if match(m) {
			return m
		}
		r.pending = append(r.pending, m)
		r.checkDeadline(deadline, "a matching message")
	}
}

// checkDeadline fails the test once deadline has passed: heartbeats keep arriving, so each
// wait needs an overall bound as well as a bound per message.
func (r *replica) checkDeadline(deadline time.Time, what string) {
	r.t.Helper()
	if time.Now().After(deadline) {
		r.t.Fatalf("timed out waiting for %s", what)
	}
}

// result waits for the result of an execution.
func (r *replica) result(id string) *agentv1.Result {
	r.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if res, ok := r.results[id]; ok {
			delete(r.results, id)
			return res
		}
		r.checkDeadline(deadline, "the result of "+id)
		r.receive()
	}
}

func (r *replica) started() *agentv1.Started {
	r.t.Helper()
	return r.next(func(m *agentv1.ConnectResponse) bool { return m.GetStarted() != nil }).GetStarted()
}

func (r *replica) released() *agentv1.Release {
	r.t.Helper()
	return r.next(func(m *agentv1.ConnectResponse) bool { return m.GetRelease() != nil }).GetRelease()
}

// heartbeat waits for a heartbeat that match accepts.
func (r *replica) heartbeat(match func(*agentv1.Heartbeat) bool) *agentv1.Heartbeat {
	r.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		m := r.receive()
		if hb := m.GetHeartbeat(); hb != nil && match(hb) {
			return hb
		}
		r.checkDeadline(deadline, "a matching heartbeat")
	}
}

// ended waits for the session to end and returns the error it ended with.
func (r *replica) ended() error {
	r.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		select {
		case <-r.msgs:
		case err := <-r.recvErr:
			r.recvErr <- err
			return err
		case <-time.After(waitFor):
			r.t.Fatal("session did not end")
		}
		r.checkDeadline(deadline, "the session to end")
	}
}

func assignment(id, handler string, epoch int64) *agentv1.Assignment {
	return &agentv1.Assignment{ExecutionId: id, Handler: handler, LeaseEpoch: epoch, Attempt: 1, Job: "job-" + id}
}

func ids(execs []*agentv1.RunningExecution) []string {
	out := make([]string, len(execs))
	for i, ex := range execs {
		out[i] = ex.GetExecutionId()
	}
	return out
}

// flakyListener is the worker's listener, with switches to break every connection and to
// refuse new ones, so tests can take the service away and bring it back.
type flakyListener struct {
	net.Listener

	mu      sync.Mutex // protects conns and refuse
	conns   map[net.Conn]struct{}
	refuse  bool
	refused chan struct{} // receives a value each time a connection is refused
}

func newFlakyListener(l net.Listener) *flakyListener {
	return &flakyListener{Listener: l, conns: map[net.Conn]struct{}{}, refused: make(chan struct{}, 1)}
}

func (l *flakyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.refuse {
			l.mu.Unlock()
			_ = c.Close()
			select {
			case l.refused <- struct{}{}:
			default:
			}
			continue
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		return &trackedConn{Conn: c, l: l}, nil
	}
}

// down closes every connection and refuses new ones until up is called.
func (l *flakyListener) down() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refuse = true
	for c := range l.conns {
		_ = c.Close()
	}
}

func (l *flakyListener) up() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refuse = false
}

type trackedConn struct {
	net.Conn
	l    *flakyListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.Conn)
		c.l.mu.Unlock()
	})
	err := c.Conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
