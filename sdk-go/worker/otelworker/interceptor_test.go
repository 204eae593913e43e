package otelworker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/otelworker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpan  = "00f067aa0ba902b7"
	traceparent = "00-" + traceID + "-" + parentSpan + "-01"
)

// setup serves a worker traced into a span recorder.
func setup(t *testing.T, register func(*worker.Worker)) (*workertest.Agent, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	w := worker.New(worker.Options{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Interceptors: []worker.Interceptor{otelworker.NewInterceptor(otelworker.WithTracerProvider(tp))},
	})
	register(w)
	agent := workertest.Serve(w, workertest.Options{})
	t.Cleanup(func() {
		require.NoError(t, agent.Close())
		require.NoError(t, tp.Shutdown(context.Background()))
	})
	return agent, rec
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestSpanJoinsTheExecutionTrace(t *testing.T) {
	t.Parallel()
	agent, rec := setup(t, func(w *worker.Worker) {
		w.Handle("work", func(ctx context.Context, _ []byte) ([]byte, error) {
			// A span the handler starts nests under the handler span.
			_, child := trace.SpanFromContext(ctx).TracerProvider().Tracer("user").Start(ctx, "user work")
			child.End()
			return nil, nil
		})
	})
	res, err := agent.Run(t.Context(), workertest.Start{
		ID: "e1", Handler: "work", Job: "nightly", Attempt: 2, LeaseEpoch: 7, ShardIndex: 1, ShardTotal: 3,
		TraceContext: map[string]string{"traceparent": traceparent},
	})
	require.NoError(t, err)
	require.Equal(t, workertest.Succeeded, res.Outcome)

	spans := rec.Ended()
	require.Len(t, spans, 2, "the handler span and the user's span; the worker starts none of its own")
	user, handler := spans[0], spans[1]
	require.Equal(t, "tock.handler work", handler.Name())
	require.Equal(t, trace.SpanKindServer, handler.SpanKind())
	require.Equal(t, traceID, handler.SpanContext().TraceID().String())
	require.Equal(t, parentSpan, handler.Parent().SpanID().String())
	require.True(t, handler.Parent().IsRemote())
	require.Equal(t, handler.SpanContext().SpanID(), user.Parent().SpanID())
	require.Equal(t, codes.Unset, handler.Status().Code)
	require.Equal(t, otelworker.ScopeName, handler.InstrumentationScope().Name)
	require.Equal(t, worker.Version, handler.InstrumentationScope().Version)
	require.Equal(t, map[attribute.Key]attribute.Value{
		"tock.execution.id": attribute.StringValue("e1"),
		"tock.job":          attribute.StringValue("nightly"),
		"tock.handler":      attribute.StringValue("work"),
		"tock.attempt":      attribute.IntValue(2),
		"tock.lease_epoch":  attribute.Int64Value(7),
		"tock.shard.index":  attribute.IntValue(1),
		"tock.shard.total":  attribute.IntValue(3),
		"tock.outcome":      attribute.StringValue("SUCCEEDED"),
	}, attrs(handler))
}

func TestSpanWithoutTraceContextStartsATrace(t *testing.T) {
	t.Parallel()
	agent, rec := setup(t, func(w *worker.Worker) {
		w.Handle("work", func(context.Context, []byte) ([]byte, error) { return nil, nil })
	})
	_, err := agent.Run(t.Context(), workertest.Start{Handler: "work"})
	require.NoError(t, err)
	spans := rec.Ended()
	require.Len(t, spans, 1)
	require.False(t, spans[0].Parent().IsValid())
	require.NotContains(t, attrs(spans[0]), attribute.Key("tock.shard.index"))
}

func TestSpanRecordsErrors(t *testing.T) {
	t.Parallel()
	agent, rec := setup(t, func(w *worker.Worker) {
		w.Handle("fail", func(context.Context, []byte) ([]byte, error) {
			return nil, &worker.Error{Kind: "Deliberate", Message: "always fails", Retryable: true}
		})
		w.Handle("plain", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("disk full") })
		w.Handle("panic", func(context.Context, []byte) ([]byte, error) { panic("kaboom") })
		w.Handle("wait", func(ctx context.Context, _ []byte) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
	})
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	runs := []struct {
		start   workertest.Start
		ctx     context.Context
		message string
		outcome string
		kind    *string
	}{
		{workertest.Start{Handler: "fail"}, t.Context(), "always fails", "FAILED", ptr("Deliberate")},
		{workertest.Start{Handler: "plain"}, t.Context(), "disk full", "FAILED", nil},
		{workertest.Start{Handler: "panic"}, t.Context(), "handler panicked: kaboom", "FAILED", nil},
		{workertest.Start{Handler: "wait", Deadline: time.Now().Add(10 * time.Millisecond)}, t.Context(), "context deadline exceeded", "TIMED_OUT", nil},
		{workertest.Start{Handler: "wait"}, cancelled, "context canceled", "CANCELLED", nil},
	}
	for i, r := range runs {
		_, err := agent.Run(r.ctx, r.start)
		require.NoError(t, err)
		spans := rec.Ended()
		require.Len(t, spans, i+1)
		s := spans[i]
		require.Equal(t, codes.Error, s.Status().Code, r.start.Handler)
		require.Equal(t, r.message, s.Status().Description, r.start.Handler)
		require.Len(t, s.Events(), 1, r.start.Handler)
		require.Equal(t, "exception", s.Events()[0].Name)
		a := attrs(s)
		require.Equal(t, r.outcome, a["tock.outcome"].AsString(), r.start.Handler)
		if r.kind != nil {
			require.Equal(t, *r.kind, a["tock.error.kind"].AsString())
			require.True(t, a["tock.error.retryable"].AsBool())
		} else {
			require.NotContains(t, a, attribute.Key("tock.error.kind"), r.start.Handler)
		}
	}
}

func ptr[T any](v T) *T { return &v }
