package workertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"github.com/tockhq/tock/sdk-go/worker"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
)

// Options configures an Agent.
type Options struct {
	// Token is sent as "authorization: Bearer <Token>" on every call, as the agent's
	// --app-token does. Default: empty, no token.
	Token string
}

// Agent plays the Tock agent for one worker. Its methods are safe for concurrent use; many
// executions may run at once.
type Agent struct {
	conn   *grpc.ClientConn
	client handlerv1.HandlerServiceClient
	token  string

	// For an Agent made by Serve: stops the worker and receives Serve's error.
	stopWorker context.CancelFunc
	served     chan error

	mu      sync.Mutex // protects stream, pending, nextID, readErr and closed
	stream  *execStream
	pending map[string]*collector
	nextID  int
	readErr error // why the stream ended, once it has
	closed  bool

	sendMu sync.Mutex // serialises Send on the stream
}

// execStream is the Agent's Execute stream and the end of its reader goroutine.
type execStream struct {
	s      handlerv1.HandlerService_ExecuteClient
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader goroutine returns
}

// Serve starts w.Serve on an in-memory listener and returns an Agent connected to it. Close
// stops the worker gracefully and returns Serve's error. w must not be served elsewhere.
func Serve(w *worker.Worker, opts Options) *Agent {
	lis := bufconn.Listen(1 << 20)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- w.Serve(ctx, lis) }()
	conn, err := grpc.NewClient("passthrough:///workertest",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		// Only bad options make NewClient fail, and these are fixed.
		panic(fmt.Sprintf("workertest: connect to the in-memory listener: %v", err))
	}
	a := newAgent(conn, opts)
	a.stopWorker, a.served = stop, served
	return a
}

// Dial returns an Agent connected to a worker serving on addr: "host:port", or
// "unix:///path/to/socket" for a unix socket. The connection is made on first use.
func Dial(addr string, opts Options) (*Agent, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("workertest: dial %s: %w", addr, err)
	}
	return newAgent(conn, opts), nil
}

func newAgent(conn *grpc.ClientConn, opts Options) *Agent {
	return &Agent{
		conn:    conn,
		client:  handlerv1.NewHandlerServiceClient(conn),
		token:   opts.Token,
		pending: make(map[string]*collector),
	}
}

// outgoing adds the token to ctx.
func (a *Agent) outgoing(ctx context.Context) context.Context {
	if a.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+a.token)
}

// Handlers returns the names of the handlers the worker serves, sorted.
func (a *Agent) Handlers(ctx context.Context) ([]string, error) {
	resp, err := a.client.ListHandlers(a.outgoing(ctx), &handlerv1.ListHandlersRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return nil, fmt.Errorf("workertest: list handlers: %w", err)
	}
	names := make([]string, len(resp.GetHandlers()))
	for i, h := range resp.GetHandlers() {
		names[i] = h.GetName()
	}
	return names, nil
}

// Run runs one execution and returns its result once the worker reports it, with the
// progress, log lines and heartbeats the handler sent on the way.
//
// When ctx is done first, Run sends a Cancel for the execution (as the agent does when the
// control plane cancels it) and keeps waiting for the result, which the worker sends once the
// handler returns. Run returns an error only when the worker cannot be reached or the stream
// breaks; a failed execution is a Result with Outcome Failed.
func (a *Agent) Run(ctx context.Context, s Start) (Result, error) {
	es, err := a.openStream()
	if err != nil {
		return Result{}, err
	}
	c := &collector{done: make(chan struct{})}
	a.mu.Lock()
	if s.ID == "" {
		a.nextID++
		s.ID = "exec-" + strconv.Itoa(a.nextID)
	}
	if _, dup := a.pending[s.ID]; dup {
		a.mu.Unlock()
		return Result{}, fmt.Errorf("workertest: execution %q is already running", s.ID)
	}
	if a.readErr != nil {
		err := a.readErr
		a.mu.Unlock()
		return Result{}, err
	}
	a.pending[s.ID] = c
	a.mu.Unlock()

	if err := a.send(es, startRequest(s)); err != nil {
		a.forget(s.ID)
		return Result{}, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		reason := context.Cause(ctx).Error()
		if err := a.send(es, cancelRequest(s.ID, reason)); err != nil {
			a.forget(s.ID)
			return Result{}, err
		}
		<-c.done
	}
	return c.result, c.err
}

// openStream returns the Execute stream, opening it on first use.
func (a *Agent) openStream() (*execStream, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errors.New("workertest: the agent is closed")
	}
	if a.stream != nil {
		return a.stream, nil
	}
	ctx, cancel := context.WithCancel(a.outgoing(context.Background()))
	s, err := a.client.Execute(ctx, grpc.WaitForReady(true))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("workertest: open the Execute stream: %w", err)
	}
	es := &execStream{s: s, cancel: cancel, done: make(chan struct{})}
	a.stream = es
	go a.read(es)
	return es, nil
}

func (a *Agent) send(es *execStream, m *handlerv1.ExecuteRequest) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	if err := es.s.Send(m); err != nil {
		return fmt.Errorf("workertest: send to the worker: %w", a.streamError(es, err))
	}
	return nil
}

// streamError is the reason a stream failed: Send reports only io.EOF, Recv the status.
func (a *Agent) streamError(es *execStream, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	<-es.done
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.readErr
}

func (a *Agent) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pending, id)
}

// read files every message from the worker under its execution until the stream ends, then
// fails the executions still waiting.
func (a *Agent) read(es *execStream) {
	defer close(es.done)
	for {
		m, err := es.s.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the worker ended the Execute stream")
			}
			a.endStream(fmt.Errorf("workertest: receive from the worker: %w", err))
			return
		}
		a.file(m)
	}
}

func (a *Agent) file(m *handlerv1.ExecuteResponse) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch k := m.GetKind().(type) {
	case *handlerv1.ExecuteResponse_Progress:
		if c := a.pending[k.Progress.GetExecutionId()]; c != nil {
			c.result.Progress = append(c.result.Progress, Progress{Fraction: k.Progress.GetFraction(), Message: k.Progress.GetMessage()})
		}
	case *handlerv1.ExecuteResponse_Log:
		if c := a.pending[k.Log.GetExecutionId()]; c != nil {
			c.result.Logs = append(c.result.Logs, logFromProto(k.Log))
		}
	case *handlerv1.ExecuteResponse_Heartbeat:
		if c := a.pending[k.Heartbeat.GetExecutionId()]; c != nil {
			c.result.Heartbeats++
		}
	case *handlerv1.ExecuteResponse_Result:
		id := k.Result.GetExecutionId()
		if c := a.pending[id]; c != nil {
			delete(a.pending, id)
			setOutcome(&c.result, k.Result)
			close(c.done)
		}
	}
}

func (a *Agent) endStream(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.readErr = err
	for id, c := range a.pending {
		delete(a.pending, id)
		c.err = err
		close(c.done)
	}
}

// Close ends the Execute stream (the worker cancels the handlers still running on it and
// reports their results), closes the connection and, for an Agent made by Serve, stops the
// worker and returns the error Serve returned.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	es := a.stream
	a.mu.Unlock()

	if es != nil {
		a.sendMu.Lock()
		_ = es.s.CloseSend()
		a.sendMu.Unlock()
		select {
		case <-es.done:
		case <-time.After(closeTimeout):
		}
		es.cancel()
		<-es.done
	}
	err := a.conn.Close()
	if a.stopWorker != nil {
		a.stopWorker()
		if serr := <-a.served; serr != nil {
			return serr
		}
	}
	if err != nil {
		return fmt.Errorf("workertest: close the connection: %w", err)
	}
	return nil
}

// closeTimeout bounds how long Close waits for the worker to end the stream by itself.
const closeTimeout = 10 * time.Second

// collector gathers what the worker reports about one execution.
type collector struct {
	result Result
	err    error
	done   chan struct{} // closed once result or err is final
}
