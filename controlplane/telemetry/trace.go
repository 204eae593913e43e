package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tockhq/tock/controlplane/store"
)

// ScopeName is the instrumentation scope of tockd's spans.
const ScopeName = "github.com/tockhq/tock/controlplane"

// TraceparentKey is the W3C trace context header that carries a span's context.
const TraceparentKey = "traceparent"

// Propagator is the propagation format everywhere in Tock: W3C trace context.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracer returns tockd's tracer from tp; a nil tp makes spans with no ids.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	return orNoop(tp).Tracer(ScopeName, trace.WithInstrumentationVersion(Version()))
}

// Traceparent returns the W3C traceparent of the span in ctx, or "" when it has none.
func Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	Propagator.Inject(ctx, c)
	return c[TraceparentKey]
}

// ContextWithTraceparent returns ctx with the span context that traceparent names as its
// remote parent; ctx itself when traceparent is empty or malformed.
func ContextWithTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.MapCarrier{TraceparentKey: traceparent})
}

// ExecutionContext returns ctx carrying the execution's trace (from its stored traceparent),
// so that spans started from it join the trace and log lines written with it carry its ids.
func ExecutionContext(ctx context.Context, e *store.Execution) context.Context {
	return ContextWithTraceparent(ctx, e.TraceContext)
}

// StartExecutionTrace starts the root span of an execution's trace, named name, and records
// its traceparent and trace id on e. The span is a new root even when ctx carries a span (an
// incoming request's, say): that span is linked instead, so that each execution has a trace
// of its own. End the span once the execution is recorded, with EndExecutionTrace.
func StartExecutionTrace(ctx context.Context, tracer trace.Tracer, name string, e *store.Execution, start time.Time, attrs ...attribute.KeyValue) trace.Span {
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(ExecutionAttributes(e)...),
		trace.WithAttributes(attrs...),
	}
	if !start.IsZero() {
		opts = append(opts, trace.WithTimestamp(start))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	spanCtx, span := tracer.Start(ctx, name, opts...)
	if sc := span.SpanContext(); sc.IsValid() {
		e.TraceContext = Traceparent(spanCtx)
		e.TraceID = sc.TraceID().String()
	}
	return span
}

// EndExecutionTrace ends an execution's root span once the execution is recorded, adding its
// id (which the store may have generated).
func EndExecutionTrace(span trace.Span, e store.Execution) {
	if e.ID != "" {
		span.SetAttributes(attribute.String("tock.execution.id", e.ID))
	}
	span.End()
}

// ExecutionAttributes describes an execution on its spans, with the names the agent and the
// SDKs use.
func ExecutionAttributes(e *store.Execution) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("tock.job", e.Job),
		attribute.String("tock.handler", e.Handler),
		attribute.Int("tock.attempt", max(e.Attempt, 1)),
		attribute.String("tock.trigger", string(e.Trigger)),
	}
	if e.ID != "" {
		attrs = append(attrs, attribute.String("tock.execution.id", e.ID))
	}
	if !e.NominalTime.IsZero() {
		attrs = append(attrs, attribute.String("tock.nominal_time", e.NominalTime.UTC().Format(time.RFC3339Nano)))
	}
	return attrs
}

// SpanContextOf returns the span context a traceparent names; an invalid one when it is
// empty or malformed.
func SpanContextOf(traceparent string) trace.SpanContext {
	return trace.SpanContextFromContext(ContextWithTraceparent(context.Background(), traceparent))
}
