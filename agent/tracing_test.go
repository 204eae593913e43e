package agent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/agent"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The dispatch span of the control plane, as an assignment carries it.
const (
	parentTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + parentTraceID + "-" + parentSpanID + "-01"
)

// handlerTrace is what the "trace" handler returns: the trace context it ran under.
type handlerTrace struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

func runTraced(t *testing.T, r *replica, id, handler string) *agentv1.Result {
	t.Helper()
	asg := assignment(id, handler, 7)
	asg.TraceContext = map[string]string{"traceparent": traceparent, "tracestate": "vendor=x", "baggage": "k=v"}
	r.assign(asg)
	return r.result(id)
}

// agentSpan returns the one ended agent span.
func agentSpan(t *testing.T, rec *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.InstrumentationScope().Name == "github.com/tockhq/tock/agent" {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1)
	return found[0]
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestAgentSpanIsChildOfAssignmentAndParentOfHandler(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	logs := &syncBuffer{}
	e := setup(t, func(c *agent.Config) {
		c.TracerProvider = tp
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.waitHealthy()
	r, _ := e.connect(1)

	res := runTraced(t, r, "traced-1", "trace")
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, res.GetOutcome())
	var seen handlerTrace
	require.NoError(t, json.Unmarshal(res.GetOutput(), &seen))

	span := agentSpan(t, rec)
	require.Equal(t, "tock.agent.execute trace", span.Name())
	require.Equal(t, parentTraceID, span.Parent().TraceID().String())
	require.Equal(t, parentSpanID, span.Parent().SpanID().String())
	require.True(t, span.Parent().IsRemote())
	require.Equal(t, parentTraceID, span.SpanContext().TraceID().String())
	require.Equal(t, "vendor=x", span.SpanContext().TraceState().String())

	// The service runs the handler under the agent's span, not under the dispatch span.
	require.Equal(t, parentTraceID, seen.TraceID)
	require.Equal(t, span.SpanContext().SpanID().String(), seen.SpanID)

	attrs := spanAttrs(span)
	require.Equal(t, "traced-1", attrs["tock.execution.id"].AsString())
	require.Equal(t, "job-traced-1", attrs["tock.job"].AsString())
	require.Equal(t, "trace", attrs["tock.handler"].AsString())
	require.EqualValues(t, 1, attrs["tock.attempt"].AsInt64())
	require.EqualValues(t, 7, attrs["tock.lease_epoch"].AsInt64())
	require.Equal(t, "agent-1", attrs["tock.agent.id"].AsString())
	require.Equal(t, "SUCCEEDED", attrs["tock.outcome"].AsString())
	require.Equal(t, codes.Unset, span.Status().Code)

	// Log lines about the execution carry its trace and span ids.
	lines := logs.linesWith("execution_id", "traced-1")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		require.Equal(t, parentTraceID, l["trace_id"], "line %v", l)
		require.Equal(t, span.SpanContext().SpanID().String(), l["span_id"], "line %v", l)
	}
}

func TestAgentSpanRecordsFailure(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	e := setup(t, func(c *agent.Config) { c.TracerProvider = tp })
	e.waitHealthy()
	r, _ := e.connect(1)

	res := runTraced(t, r, "traced-fail", "fail")
	require.Equal(t, agentv1.Outcome_OUTCOME_FAILED, res.GetOutcome())
	span := agentSpan(t, rec)
	require.Equal(t, codes.Error, span.Status().Code)
	require.Equal(t, "always fails", span.Status().Description)
	attrs := spanAttrs(span)
	require.Equal(t, "FAILED", attrs["tock.outcome"].AsString())
	require.Equal(t, "Deliberate", attrs["tock.error.kind"].AsString())
	require.False(t, attrs["tock.error.retryable"].AsBool())
}

func TestGRPCSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	e := setup(t, func(c *agent.Config) { c.TracerProvider = tp })
	e.waitHealthy()
	r, _ := e.connect(1)
	runTraced(t, r, "traced-grpc", "echo")
	r.cancel() // ends the session's span
	require.Eventually(t, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "tock.agent.v1.AgentService/Connect" && s.SpanKind() == trace.SpanKindServer {
				return true
			}
		}
		return false
	}, waitFor, tick, "no span for the session")
	for _, s := range rec.Ended() {
		require.NotContains(t, s.Name(), "ListHandlers", "periodic handler listing is not traced")
	}
}

func TestTraceContextPassesThroughWithoutTracing(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *agent.Config) { c.TracerProvider = noop.NewTracerProvider() })
	e.waitHealthy()
	r, _ := e.connect(1)
	res := runTraced(t, r, "untraced", "trace")
	var seen handlerTrace
	require.NoError(t, json.Unmarshal(res.GetOutput(), &seen))
	require.Equal(t, handlerTrace{TraceID: parentTraceID, SpanID: parentSpanID}, seen)
}

// syncBuffer is a log destination tests can read while the agent writes.
type syncBuffer struct {
	mu  sync.Mutex // protects buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// linesWith returns the JSON log lines whose key has the value.
func (b *syncBuffer) linesWith(key, value string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewBufferString(b.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line[key] == value {
			out = append(out, line)
		}
	}
	return out
}
