package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
)

// The benchmark drives executions over two real protocols, with the generated clients, to
// compare a handler called directly with one called through tock-agent (W6):
//
//	agentDriver:  this program ──tock.agent.v1 Connect──▶ tock-agent ──Execute──▶ handler service
//	serviceDriver: this program ──tock.handler.v1 Execute──────────────────────▶ handler service
//
// agentDriver is the control-plane side of a session, as tockd's dispatcher speaks it
// (controlplane/dispatch/session.go): it dials the agent's listen address, sends Open with a
// replica id, a session epoch and the heartbeat interval, waits for Hello, assigns executions
// as tockd fills an Assignment (a UUIDv7 id, lease epoch 1 for a first assignment, the
// deadline as assignment time plus the job's timeout, the nominal time), and acknowledges
// every result as applied. serviceDriver is the agent's side of the Execute stream: it sends
// the Start the agent would send for the same assignment.

// driverEvent is one execution's end as a driver saw it.
type driverEvent struct {
	id string
	at time.Time // when the result was received, this process's clock
	ok bool      // the execution succeeded
}

// execDriver sends executions of the noop handler and reports their results on events.
type execDriver interface {
	// start sends one execution with id, for job, now.
	start(id, job string) error
	// events receives every result.
	events() <-chan driverEvent
	// close ends the stream and waits for its reader.
	close() error
}

// benchHeartbeat is the heartbeat interval the drivers ask agents for: tockd's default.
const benchHeartbeat = time.Second

// benchTimeout is the timeout of every execution driven here, as noopJob's.
const benchTimeout = 30 * time.Second

// newExecID returns a new execution id, a UUIDv7 as tockd's.
func newExecID() string { return uuid.Must(uuid.NewV7()).String() }

// deliver hands e to whoever reads ev, unless ctx ends first.
func deliver(ctx context.Context, ev chan<- driverEvent, e driverEvent) {
	select {
	case ev <- e:
	case <-ctx.Done():
	}
}

// agentDriver is a control-plane session with one tock-agent.
type agentDriver struct {
	conn   *grpc.ClientConn
	stream agentv1.AgentService_ConnectClient
	ctx    context.Context // the stream's; done when the driver closes
	cancel context.CancelFunc
	ev     chan driverEvent
	done   chan struct{}
	err    error // why the reader stopped; written before done is closed

	sendMu sync.Mutex // serializes Send, as gRPC requires

	mu       sync.Mutex // protects the fields below
	healthy  bool       // the last heartbeat said the local service is reachable
	handlers []string
	released int // executions handed back
}

// dialAgent opens a session with the agent at addr, as the replica replicaID, and waits
// until the agent reports the noop handler and a reachable service.
func dialAgent(ctx context.Context, addr, replicaID string, buffer int) (*agentDriver, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		return nil, fmt.Errorf("dial agent %s: %w", addr, err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &agentDriver{conn: conn, ctx: sctx, cancel: cancel, ev: make(chan driverEvent, buffer), done: make(chan struct{})}
	fail := func(err error) (*agentDriver, error) {
		cancel()
		_ = conn.Close()
		return nil, err
	}
	if d.stream, err = agentv1.NewAgentServiceClient(conn).Connect(sctx); err != nil {
		return fail(fmt.Errorf("open session with agent %s: %w", addr, err))
	}
	err = d.stream.Send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Open{Open: &agentv1.Open{
		ReplicaId:         replicaID,
		SessionEpoch:      time.Now().UnixNano(),
		HeartbeatInterval: durationpb.New(benchHeartbeat),
	}}})
	if err != nil {
		return fail(fmt.Errorf("send open to agent %s: %w", addr, err))
	}
	first, err := d.stream.Recv()
	if err != nil {
		return fail(fmt.Errorf("wait for hello from agent %s: %w", addr, err))
	}
	hello := first.GetHello()
	if hello == nil {
		return fail(fmt.Errorf("agent %s did not start with hello", addr))
	}
	// A Hello says nothing of the service's health; the first heartbeat does.
	d.handlers = hello.GetHandlers()
	go d.read()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d.mu.Lock()
		ready := d.healthy && slices.Contains(d.handlers, noopHandler)
		d.mu.Unlock()
		if ready {
			return d, nil
		}
		if time.Now().After(deadline) {
			_ = d.close()
			return nil, fmt.Errorf("agent %s: no heartbeat with a healthy service serving %q within 30 s", addr, noopHandler)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			_ = d.close()
			return nil, err
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("agent %s: session ended: %w", addr, d.err)
		default:
		}
	}
}

// receiveAll hands every message recv returns to apply until the stream ends, and returns
// why it ended: nil at its end, or the error of recv or apply.
func receiveAll[T any](recv func() (T, error), apply func(T) error) error {
	for {
		msg, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := apply(msg); err != nil {
			return err
		}
	}
}

// read applies the agent's messages until the stream ends.
func (d *agentDriver) read() {
	defer close(d.done)
	d.err = receiveAll(d.stream.Recv, d.apply)
}

// apply takes one message of the agent into account.
func (d *agentDriver) apply(msg *agentv1.ConnectResponse) error {
	switch k := msg.GetKind().(type) {
	case *agentv1.ConnectResponse_Results:
		at := time.Now()
		ack := &agentv1.Ack{}
		for _, r := range k.Results.GetResults() {
			deliver(d.ctx, d.ev, driverEvent{id: r.GetExecutionId(), at: at, ok: r.GetOutcome() == agentv1.Outcome_OUTCOME_SUCCEEDED})
			ack.Results = append(ack.Results, &agentv1.ResultAck{
				ExecutionId: r.GetExecutionId(), LeaseEpoch: r.GetLeaseEpoch(), Applied: true})
		}
		return d.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Ack{Ack: ack}})
	case *agentv1.ConnectResponse_Heartbeat:
		d.mu.Lock()
		d.healthy = k.Heartbeat.GetServiceHealthy()
		if hs := k.Heartbeat.GetHandlers(); len(hs) > 0 {
			d.handlers = hs
		}
		d.mu.Unlock()
	case *agentv1.ConnectResponse_Release:
		d.mu.Lock()
		d.released += len(k.Release.GetExecutions())
		d.mu.Unlock()
		at := time.Now()
		for _, r := range k.Release.GetExecutions() {
			deliver(d.ctx, d.ev, driverEvent{id: r.GetExecutionId(), at: at})
		}
	case *agentv1.ConnectResponse_Hello:
		d.mu.Lock()
		d.handlers = k.Hello.GetHandlers()
		d.mu.Unlock()
	}
	return nil
}

func (d *agentDriver) send(m *agentv1.ConnectRequest) error {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	if err := d.stream.Send(m); err != nil {
		return fmt.Errorf("send to agent: %w", err)
	}
	return nil
}

// start assigns one execution, filled in as tockd fills it for a first attempt of a job
// with no payload, triggered now.
func (d *agentDriver) start(id, job string) error {
	now := time.Now()
	return d.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Assign{Assign: &agentv1.Assign{
		Assignments: []*agentv1.Assignment{{
			ExecutionId: id,
			Job:         job,
			Handler:     noopHandler,
			Attempt:     1,
			LeaseEpoch:  1,
			NominalTime: timestamppb.New(now),
			Deadline:    timestamppb.New(now.Add(benchTimeout)),
		}},
	}}})
}

func (d *agentDriver) events() <-chan driverEvent { return d.ev }

// releasedCount returns how many executions the agent handed back.
func (d *agentDriver) releasedCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.released
}

// close ends the session as a replica that lets go of an agent does: it closes its side.
func (d *agentDriver) close() error {
	return closeDriver(&d.sendMu, d.stream.CloseSend, d.done, d.cancel, d.conn)
}

// serviceDriver is an Execute stream to a handler service, as an agent holds it.
type serviceDriver struct {
	conn   *grpc.ClientConn
	stream handlerv1.HandlerService_ExecuteClient
	ctx    context.Context // the stream's; done when the driver closes
	cancel context.CancelFunc
	ev     chan driverEvent
	done   chan struct{}
	err    error // why the reader stopped; written before done is closed

	sendMu sync.Mutex // serializes Send
}

// dialService opens an Execute stream to the handler service at addr.
func dialService(ctx context.Context, addr string, buffer int) (*serviceDriver, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		return nil, fmt.Errorf("dial handler service %s: %w", addr, err)
	}
	client := handlerv1.NewHandlerServiceClient(conn)
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := client.ListHandlers(lctx, &handlerv1.ListHandlersRequest{})
	lcancel()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("list handlers of %s: %w", addr, err)
	}
	if !slices.ContainsFunc(resp.GetHandlers(), func(h *handlerv1.HandlerInfo) bool { return h.GetName() == noopHandler }) {
		_ = conn.Close()
		return nil, fmt.Errorf("handler service %s does not serve %q", addr, noopHandler)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &serviceDriver{conn: conn, ctx: sctx, cancel: cancel, ev: make(chan driverEvent, buffer), done: make(chan struct{})}
	if d.stream, err = client.Execute(sctx); err != nil {
		cancel()
		_ = conn.Close()
		return nil, fmt.Errorf("open execute stream to %s: %w", addr, err)
	}
	go d.read()
	return d, nil
}

// read delivers the service's results until the stream ends.
func (d *serviceDriver) read() {
	defer close(d.done)
	d.err = receiveAll(d.stream.Recv, func(msg *handlerv1.ExecuteResponse) error {
		if r := msg.GetResult(); r != nil {
			deliver(d.ctx, d.ev, driverEvent{id: r.GetExecutionId(), at: time.Now(), ok: r.GetOutput() != nil})
		}
		return nil
	})
}

// start sends the Start the agent sends for the same assignment (agent/convert.go).
func (d *serviceDriver) start(id, job string) error {
	now := time.Now()
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	err := d.stream.Send(&handlerv1.ExecuteRequest{Kind: &handlerv1.ExecuteRequest_Start{Start: &handlerv1.Start{
		ExecutionId: id,
		Handler:     noopHandler,
		Job:         job,
		Attempt:     1,
		NominalTime: timestamppb.New(now),
		LeaseEpoch:  1,
		Deadline:    timestamppb.New(now.Add(benchTimeout)),
	}}})
	if err != nil {
		return fmt.Errorf("send to handler service: %w", err)
	}
	return nil
}

func (d *serviceDriver) events() <-chan driverEvent { return d.ev }

func (d *serviceDriver) close() error {
	return closeDriver(&d.sendMu, d.stream.CloseSend, d.done, d.cancel, d.conn)
}

// closeDriver ends a driver's stream: it closes the sending side (under mu, which serializes
// sends), gives the reader up to 5 s to see the end (done), then cancels the stream and
// closes the connection.
func closeDriver(mu *sync.Mutex, closeSend func() error, done <-chan struct{}, cancel context.CancelFunc, conn *grpc.ClientConn) error {
	mu.Lock()
	_ = closeSend()
	mu.Unlock()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
	cancel()
	<-done
	return conn.Close()
}
