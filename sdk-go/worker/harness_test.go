package worker_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"github.com/tockhq/tock/sdk-go/worker"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// waitFor bounds every wait in these tests.
const waitFor = 10 * time.Second

// harness is a worker served over an in-memory connection, and a client playing the agent.
type harness struct {
	t      *testing.T
	w      *worker.Worker
	client handlerv1.HandlerServiceClient
	stop   context.CancelFunc // ends Serve's context
	served chan error         // Serve's return value
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve starts a worker with opts whose handlers are added by register.
func serve(t *testing.T, opts worker.Options, register func(*worker.Worker)) *harness {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	lis := bufconn.Listen(1 << 20)
	w := worker.New(opts)
	register(w)

	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- w.Serve(ctx, lis) }()

	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)

	h := &harness{t: t, w: w, client: handlerv1.NewHandlerServiceClient(conn), stop: stop, served: served}
	// Wait until the worker answers, so that tests start against a serving worker.
	readyCtx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err = h.client.ListHandlers(readyCtx, &handlerv1.ListHandlersRequest{}, grpc.WaitForReady(true))
	if opts.Token == "" {
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		stop()
		select {
		case err := <-served:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Error("Serve did not return")
		}
	})
	return h
}

// execStream is an Execute stream driven the way the agent drives it.
type execStream struct {
	t      *testing.T
	s      handlerv1.HandlerService_ExecuteClient
	cancel context.CancelFunc
}

func (h *harness) open(ctx context.Context) *execStream {
	h.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	s, err := h.client.Execute(ctx)
	require.NoError(h.t, err)
	es := &execStream{t: h.t, s: s, cancel: cancel}
	h.t.Cleanup(cancel)
	return es
}

func (es *execStream) start(m *handlerv1.Start) {
	es.t.Helper()
	require.NoError(es.t, es.s.Send(&handlerv1.ExecuteRequest{Kind: &handlerv1.ExecuteRequest_Start{Start: m}}))
}

func (es *execStream) cancelExec(id, reason string) {
	es.t.Helper()
	require.NoError(es.t, es.s.Send(&handlerv1.ExecuteRequest{Kind: &handlerv1.ExecuteRequest_Cancel{
		Cancel: &handlerv1.Cancel{ExecutionId: id, Reason: reason},
	}}))
}

// recv returns the next message.
func (es *execStream) recv() *handlerv1.ExecuteResponse {
	es.t.Helper()
	m, err := es.s.Recv()
	require.NoError(es.t, err)
	return m
}

// result returns the next result, skipping progress and logs.
func (es *execStream) result() *handlerv1.Result {
	es.t.Helper()
	for {
		if r := es.recv().GetResult(); r != nil {
			return r
		}
	}
}

// run starts one execution of handler with payload and returns its result.
func (es *execStream) run(id, handler string, payload []byte) *handlerv1.Result {
	es.t.Helper()
	es.start(&handlerv1.Start{ExecutionId: id, Handler: handler, Payload: payload})
	r := es.result()
	require.Equal(es.t, id, r.GetExecutionId())
	return r
}

func startMsg(id, handler string, deadline time.Time) *handlerv1.Start {
	m := &handlerv1.Start{ExecutionId: id, Handler: handler, Attempt: 1, LeaseEpoch: 1}
	if !deadline.IsZero() {
		m.Deadline = timestamppb.New(deadline)
	}
	return m
}

// waitCtx blocks until ctx is done and returns its error; handlers that honour cancellation.
func waitCtx(ctx context.Context, _ []byte) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
