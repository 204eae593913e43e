package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"github.com/tockhq/tock/sdk-go/worker"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func echo(_ context.Context, payload []byte) ([]byte, error) { return payload, nil }

func TestListHandlers(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("zeta", echo)
		w.Handle("alpha", echo)
	})
	resp, err := h.client.ListHandlers(context.Background(), &handlerv1.ListHandlersRequest{})
	require.NoError(t, err)
	require.Len(t, resp.GetHandlers(), 2)
	require.Equal(t, "alpha", resp.GetHandlers()[0].GetName())
	require.Equal(t, "zeta", resp.GetHandlers()[1].GetName())
	require.Equal(t, "tock-go/"+worker.Version, resp.GetSdk())

	// Handlers registered while serving are listed too.
	h.w.Handle("late", echo)
	resp, err = h.client.ListHandlers(context.Background(), &handlerv1.ListHandlersRequest{})
	require.NoError(t, err)
	require.Len(t, resp.GetHandlers(), 3)
}

func TestOutputContentType(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{}, func(w *worker.Worker) { w.Handle("echo", echo) })
	es := h.open(context.Background())

	tests := []struct {
		payload []byte
		want    string
	}{
		{[]byte(`{"a":1}`), "application/json"},
		{[]byte(`"text"`), "application/json"},
		{[]byte("not json"), "application/octet-stream"},
		{[]byte{0xff, 0x00}, "application/octet-stream"},
		{nil, "application/octet-stream"},
	}
	for i, tt := range tests {
		r := es.run(fmt.Sprintf("e%d", i), "echo", tt.payload)
		require.NotNil(t, r.GetOutput(), "case %d", i)
		require.Equal(t, tt.want, r.GetOutput().GetContentType(), "case %d", i)
		require.Equal(t, string(tt.payload), string(r.GetOutput().GetData()), "case %d", i)
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	errs := map[string]error{
		"plain":        errors.New("disk full"),
		"nonretryable": worker.NonRetryable(errors.New("bad input")),
		"retryable": worker.Retryable(&worker.Error{
			Kind: "RateLimited", Message: "slow down", RetryAfter: 3 * time.Second,
		}),
		"literal": &worker.Error{Kind: "InvalidInput", Message: "name is required"},
		"wrapped": fmt.Errorf("step 2: %w", &worker.Error{Kind: "Conflict", Message: "version mismatch", Retryable: true}),
		// The handler's own timeout, not the execution's: an ordinary retryable failure.
		"own-timeout": fmt.Errorf("call upstream: %w", context.DeadlineExceeded),
	}
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("fail", func(_ context.Context, payload []byte) ([]byte, error) {
			return nil, errs[string(payload)]
		})
	})
	es := h.open(context.Background())

	tests := []struct {
		name       string
		message    string
		kind       string
		retryable  bool
		retryAfter time.Duration
	}{
		{"plain", "disk full", "", true, 0},
		{"nonretryable", "bad input", "", false, 0},
		{"retryable", "slow down", "RateLimited", true, 3 * time.Second},
		{"literal", "name is required", "InvalidInput", false, 0},
		{"wrapped", "step 2: version mismatch", "Conflict", true, 0},
		{"own-timeout", "call upstream: context deadline exceeded", "", true, 0},
	}
	for _, tt := range tests {
		r := es.run(tt.name, "fail", []byte(tt.name))
		e := r.GetError()
		require.NotNil(t, e, tt.name)
		require.Equal(t, tt.message, e.GetMessage(), tt.name)
		require.Equal(t, tt.kind, e.GetKind(), tt.name)
		require.Equal(t, tt.retryable, e.GetRetryable(), tt.name)
		require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_UNSPECIFIED, e.GetCause(), tt.name)
		if tt.retryAfter > 0 {
			require.Equal(t, tt.retryAfter, e.GetRetryAfter().AsDuration(), tt.name)
		} else {
			require.Nil(t, e.GetRetryAfter(), tt.name)
		}
	}
}

func TestPanicIsRecovered(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("boom", func(context.Context, []byte) ([]byte, error) { panic("kaboom 42") })
		w.Handle("echo", echo)
	})
	es := h.open(context.Background())
	e := es.run("p1", "boom", nil).GetError()
	require.NotNil(t, e)
	require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_PANIC, e.GetCause())
	require.Contains(t, e.GetMessage(), "kaboom 42")
	require.True(t, e.GetRetryable())
	require.Equal(t, "Panic", e.GetKind())

	// The stream keeps working after a panic.
	require.Equal(t, "ok", string(es.run("p2", "echo", []byte("ok")).GetOutput().GetData()))
}

func TestUnknownHandler(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{}, func(w *worker.Worker) { w.Handle("echo", echo) })
	es := h.open(context.Background())
	e := es.run("u1", "nope", nil).GetError()
	require.NotNil(t, e)
	require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_UNKNOWN_HANDLER, e.GetCause())
	require.False(t, e.GetRetryable())
	require.Contains(t, e.GetMessage(), `"nope"`)
}

func TestDeadlineExceeded(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{}, func(w *worker.Worker) { w.Handle("wait", waitCtx) })
	es := h.open(context.Background())
	es.start(startMsg("d1", "wait", time.Now().Add(50*time.Millisecond)))
	e := es.result().GetError()
	require.NotNil(t, e)
	require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_DEADLINE_EXCEEDED, e.GetCause())
	require.Equal(t, "DeadlineExceeded", e.GetKind())
	require.True(t, e.GetRetryable())

	// A deadline already in the past fails at once.
	es.start(startMsg("d2", "wait", time.Now().Add(-time.Second)))
	require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_DEADLINE_EXCEEDED, es.result().GetError().GetCause())
}

func TestCancelReachesHandler(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	causes := make(chan error, 1)
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("wait", func(ctx context.Context, _ []byte) ([]byte, error) {
			close(started)
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil, fmt.Errorf("stopped: %w", ctx.Err())
		})
	})
	es := h.open(context.Background())
	es.start(startMsg("c1", "wait", time.Now().Add(time.Hour)))
	<-started
	es.cancelExec("c1", "operator asked")
	e := es.result().GetError()
	require.NotNil(t, e)
	require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_CANCELLED, e.GetCause())
	require.Equal(t, "Cancelled", e.GetKind())
	require.False(t, e.GetRetryable())
	require.ErrorContains(t, <-causes, "operator asked")

	// Cancelling an execution that is not running is harmless.
	es.cancelExec("unknown", "")
	require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_UNKNOWN_HANDLER,
		es.run("after", "missing", nil).GetError().GetCause())
}

func TestStreamCloseCancelsHandlers(t *testing.T) {
	t.Parallel()
	const n = 5
	var started sync.WaitGroup
	started.Add(n)
	cancelled := make(chan struct{}, n)
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("wait", func(ctx context.Context, _ []byte) ([]byte, error) {
			started.Done()
			<-ctx.Done()
			cancelled <- struct{}{}
			return nil, ctx.Err()
		})
	})
	es := h.open(context.Background())
	for i := range n {
		es.start(startMsg(fmt.Sprintf("s%d", i), "wait", time.Time{}))
	}
	started.Wait()
	es.cancel()
	for range n {
		select {
		case <-cancelled:
		case <-time.After(waitFor):
			t.Fatal("handler not cancelled when the stream closed")
		}
	}
}

func TestManyExecutionsOnOneStream(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("echo", func(ctx context.Context, payload []byte) ([]byte, error) {
			worker.Progress(ctx, 0.5, "half")
			worker.Logf(ctx, slog.LevelInfo, "echoing %d bytes", len(payload))
			return payload, nil
		})
	})
	es := h.open(context.Background())
	const n = 200
	for i := range n {
		es.start(&handlerv1.Start{ExecutionId: fmt.Sprintf("m%03d", i), Handler: "echo", Payload: []byte(fmt.Sprint(i))})
	}
	got := map[string]string{}
	for len(got) < n {
		if r := es.recv().GetResult(); r != nil {
			got[r.GetExecutionId()] = string(r.GetOutput().GetData())
		}
	}
	for i := range n {
		require.Equal(t, fmt.Sprint(i), got[fmt.Sprintf("m%03d", i)])
	}
}

func TestExecutionFromContext(t *testing.T) {
	t.Parallel()
	_, ok := worker.ExecutionFromContext(context.Background())
	require.False(t, ok)
	// Outside a handler the helpers do nothing.
	worker.Progress(context.Background(), 0.5, "ignored")
	worker.Logf(context.Background(), slog.LevelInfo, "ignored")

	type seen struct {
		Exec        worker.Execution
		HasDeadline bool
		Deadline    time.Time
	}
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("info", func(ctx context.Context, _ []byte) ([]byte, error) {
			ex, ok := worker.ExecutionFromContext(ctx)
			if !ok {
				return nil, errors.New("no execution in context")
			}
			d, has := ctx.Deadline()
			return json.Marshal(seen{Exec: ex, HasDeadline: has, Deadline: d})
		})
	})
	nominal := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	es := h.open(context.Background())
	es.start(&handlerv1.Start{
		ExecutionId: "0190a1b2-0000-7000-8000-000000000001",
		Handler:     "info",
		Job:         "nightly-report",
		Attempt:     3,
		NominalTime: timestamppb.New(nominal),
		LeaseEpoch:  7,
		Deadline:    timestamppb.New(deadline),
		ContentType: "application/json",
		ShardIndex:  2,
		ShardTotal:  4,
	})
	r := es.result()
	require.Equal(t, "application/json", r.GetOutput().GetContentType())
	var got seen
	require.NoError(t, json.Unmarshal(r.GetOutput().GetData(), &got))
	require.Equal(t, worker.Execution{
		ID:          "0190a1b2-0000-7000-8000-000000000001",
		Job:         "nightly-report",
		Handler:     "info",
		Attempt:     3,
		NominalTime: nominal,
		LeaseEpoch:  7,
		ShardIndex:  2,
		ShardTotal:  4,
		Deadline:    deadline,
		ContentType: "application/json",
	}, got.Exec)
	require.True(t, got.HasDeadline)
	require.True(t, deadline.Equal(got.Deadline))
}

func TestProgressAndLogs(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("chatty", func(ctx context.Context, _ []byte) ([]byte, error) {
			worker.Progress(ctx, 2, "clamped")
			worker.Logf(ctx, slog.LevelWarn, "disk at %d%%", 91)
			return []byte("{}"), nil
		})
	})
	es := h.open(context.Background())
	es.start(&handlerv1.Start{ExecutionId: "x1", Handler: "chatty"})

	p := es.recv().GetProgress()
	require.NotNil(t, p)
	require.Equal(t, "x1", p.GetExecutionId())
	require.InDelta(t, 1.0, p.GetFraction(), 0)
	require.Equal(t, "clamped", p.GetMessage())

	l := es.recv().GetLog()
	require.NotNil(t, l)
	require.Equal(t, "x1", l.GetExecutionId())
	require.Equal(t, "WARN", l.GetLevel())
	require.Equal(t, "disk at 91%", l.GetMessage())
	require.NotNil(t, l.GetTime())

	require.NotNil(t, es.result().GetOutput())
}

func TestToken(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{Token: "s3cret"}, func(w *worker.Worker) { w.Handle("echo", echo) })

	withToken := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	_, err := h.client.ListHandlers(context.Background(), &handlerv1.ListHandlersRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = h.client.ListHandlers(withToken("wrong"), &handlerv1.ListHandlersRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = h.client.ListHandlers(withToken("s3cret"), &handlerv1.ListHandlersRequest{})
	require.NoError(t, err)

	// Streams are checked too.
	s, err := h.client.Execute(context.Background())
	require.NoError(t, err)
	_, err = s.Recv()
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	es := h.open(withToken("s3cret"))
	require.Equal(t, "hi", string(es.run("t1", "echo", []byte("hi")).GetOutput().GetData()))
}

func TestHandlePanicsOnProgrammerError(t *testing.T) {
	t.Parallel()
	w := worker.New(worker.Options{})
	require.Panics(t, func() { w.Handle("", echo) })
	require.Panics(t, func() { w.Handle("x", nil) })
	w.Handle("x", echo)
	require.PanicsWithValue(t, `worker: handler "x" registered twice`, func() { w.Handle("x", echo) })
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	h := serve(t, worker.Options{ShutdownTimeout: time.Minute}, func(w *worker.Worker) {
		w.Handle("block", func(context.Context, []byte) ([]byte, error) {
			close(started)
			<-release
			return []byte(`"done"`), nil
		})
		w.Handle("echo", echo)
	})
	es := h.open(context.Background())
	es.start(&handlerv1.Start{ExecutionId: "g1", Handler: "block"})
	<-started
	h.stop()

	// New executions are refused while the running one finishes. The refusal may race with
	// the worker noticing the stop, so retry until it is seen.
	for i := 0; ; i++ {
		r := es.run(fmt.Sprintf("late%d", i), "echo", []byte("x"))
		if r.GetError().GetKind() == "WorkerShuttingDown" {
			require.True(t, r.GetError().GetRetryable())
			break
		}
		require.Less(t, i, 1000, "worker never refused new executions")
	}
	select {
	case err := <-h.served:
		t.Fatalf("Serve returned %v while a handler was running", err)
	default:
	}

	close(release)
	r := es.result()
	require.Equal(t, "g1", r.GetExecutionId())
	require.Equal(t, `"done"`, string(r.GetOutput().GetData()))
	require.NoError(t, <-h.served)
	h.served <- nil // for the cleanup
}

func TestShutdownTimeoutCancelsHandlers(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	h := serve(t, worker.Options{ShutdownTimeout: 20 * time.Millisecond}, func(w *worker.Worker) {
		w.Handle("wait", func(ctx context.Context, p []byte) ([]byte, error) {
			close(started)
			return waitCtx(ctx, p)
		})
	})
	es := h.open(context.Background())
	es.start(startMsg("w1", "wait", time.Time{}))
	<-started
	h.stop()
	e := es.result().GetError()
	require.NotNil(t, e)
	require.Equal(t, "WorkerShutdown", e.GetKind())
	require.True(t, e.GetRetryable())
	require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_UNSPECIFIED, e.GetCause())
}

func TestServeTwice(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{}, func(*worker.Worker) {})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	require.Error(t, h.w.Serve(context.Background(), lis))
}

func TestListenAndServeUnixSocket(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "worker.sock")
	w := worker.New(worker.Options{Logger: discardLogger()})
	w.Handle("echo", echo)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- w.ListenAndServe(ctx, "unix://"+path) }()

	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := handlerv1.NewHandlerServiceClient(conn)
	callCtx, callCancel := context.WithTimeout(context.Background(), waitFor)
	defer callCancel()
	resp, err := client.ListHandlers(callCtx, &handlerv1.ListHandlersRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
	require.Len(t, resp.GetHandlers(), 1)

	cancel()
	require.NoError(t, <-served)
}

func TestListenErrors(t *testing.T) {
	t.Parallel()
	_, err := worker.Listen("unix://")
	require.ErrorContains(t, err, "empty unix socket path")
	_, err = worker.Listen("not an address")
	require.Error(t, err)

	// A socket another process still serves is not removed.
	path := filepath.Join(t.TempDir(), "busy.sock")
	lis, err := worker.Listen("unix://" + path)
	require.NoError(t, err)
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	_, err = worker.Listen("unix://" + path)
	require.ErrorContains(t, err, "another process")
}

func TestTraceContextReachesHandler(t *testing.T) {
	t.Parallel()
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("trace", func(ctx context.Context, _ []byte) ([]byte, error) {
			return []byte(trace.SpanContextFromContext(ctx).TraceID().String()), nil
		})
	})
	es := h.open(context.Background())
	es.start(&handlerv1.Start{
		ExecutionId:  "tr1",
		Handler:      "trace",
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	})
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", string(es.result().GetOutput().GetData()))
}

func TestStartTimeDelaysHandler(t *testing.T) {
	t.Parallel()
	ran := make(chan time.Time, 1)
	h := serve(t, worker.Options{}, func(w *worker.Worker) {
		w.Handle("note", func(context.Context, []byte) ([]byte, error) {
			ran <- time.Now()
			return nil, nil
		})
		w.Handle("never", func(context.Context, []byte) ([]byte, error) {
			t.Error("handler ran before its start time")
			return nil, nil
		})
	})
	es := h.open(context.Background())

	// A start time ahead: the handler runs at it, not before.
	at := time.Now().Add(150 * time.Millisecond)
	m := startMsg("s1", "note", at.Add(time.Minute))
	m.StartTime = timestamppb.New(at)
	es.start(m)
	require.Nil(t, es.result().GetError())
	require.False(t, (<-ran).Before(at), "handler started before its start time")

	// Cancelled while it waits: the handler never runs and the result says cancelled.
	m = startMsg("s2", "never", time.Now().Add(time.Hour))
	m.StartTime = timestamppb.New(time.Now().Add(time.Hour))
	es.start(m)
	es.cancelExec("s2", "operator asked")
	e := es.result().GetError()
	require.NotNil(t, e)
	require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_CANCELLED, e.GetCause())

	// A start time in the past runs at once.
	m = startMsg("s3", "note", time.Now().Add(time.Minute))
	m.StartTime = timestamppb.New(time.Now().Add(-time.Hour))
	es.start(m)
	require.Nil(t, es.result().GetError())
	<-ran
}
