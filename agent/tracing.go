package agent

import (
	"context"
	"log/slog"
	"maps"
	"strings"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"
)

// tracerName names the agent's tracer.
const tracerName = "github.com/tockhq/tock/agent"

// traceContext is the propagation format of the protocol: W3C trace context travels in the
// Assignment and Start messages ("traceparent", "tracestate").
var traceContext = propagation.TraceContext{}

// startSpan starts the agent's span for an execution, from assignment to result, as a child
// of the assignment's trace context (a new trace when it has none). It returns the span and
// the trace context to send to the service: the assignment's, with the agent span in place
// of the parent, so that the handler's span is a child of the agent's.
//
// With no tracer provider installed the span does not record and keeps its parent's context,
// so the service receives the assignment's trace context unchanged.
func (a *Agent) startSpan(asg *agentv1.Assignment) (trace.Span, map[string]string) {
	ctx := context.Background()
	if tc := asg.GetTraceContext(); len(tc) > 0 {
		ctx = traceContext.Extract(ctx, propagation.MapCarrier(tc))
	}
	ctx, span := a.tracer.Start(ctx, "tock.agent.execute "+asg.GetHandler(),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("tock.execution.id", asg.GetExecutionId()),
			attribute.String("tock.job", asg.GetJob()),
			attribute.String("tock.handler", asg.GetHandler()),
			attribute.Int("tock.attempt", int(asg.GetAttempt())),
			attribute.Int64("tock.lease_epoch", asg.GetLeaseEpoch()),
			attribute.String("tock.agent.id", a.id),
		))
	out := maps.Clone(asg.GetTraceContext())
	if out == nil {
		out = map[string]string{}
	}
	delete(out, "traceparent")
	delete(out, "tracestate")
	traceContext.Inject(ctx, propagation.MapCarrier(out))
	if len(out) == 0 {
		out = nil
	}
	return span, out
}

// endSpan ends an execution's span with its result.
func endSpan(span trace.Span, r *agentv1.Result) {
	// The same values as the SDK's handler span: SUCCEEDED, FAILED, TIMED_OUT, CANCELLED.
	span.SetAttributes(attribute.String("tock.outcome", strings.TrimPrefix(r.GetOutcome().String(), "OUTCOME_")))
	if e := r.GetError(); e != nil {
		span.SetAttributes(
			attribute.String("tock.error.kind", e.GetKind()),
			attribute.Bool("tock.error.retryable", e.GetRetryable()),
		)
	}
	if r.GetOutcome() != agentv1.Outcome_OUTCOME_SUCCEEDED {
		span.SetStatus(codes.Error, r.GetError().GetMessage())
	}
	span.End()
}

// traceAttrs appends the trace_id and span_id log attributes of sc to args, when sc is valid.
func traceAttrs(args []any, sc trace.SpanContext) []any {
	if !sc.IsValid() {
		return args
	}
	return append(args, "trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
}

// logExecution logs a line about ex with its id, lease epoch, handler, trace id and span id.
func (a *Agent) logExecution(level slog.Level, ex *execution, msg string, args ...any) {
	ctx := context.Background()
	if !a.log.Enabled(ctx, level) {
		return
	}
	attrs := append([]any{"execution_id", ex.id, "lease_epoch", ex.epoch, "handler", ex.handler}, args...)
	a.log.Log(ctx, level, msg, traceAttrs(attrs, ex.span.SpanContext())...)
}

// serverStatsHandler traces the RPCs the agent serves: a span per session (Connect stream).
// Health checks, which Consul makes every few seconds, are not traced.
func serverStatsHandler(tp trace.TracerProvider) stats.Handler {
	return otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(traceContext),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	)
}

// clientStatsHandler traces the agent's calls to the local service: a span per Execute stream.
// The periodic ListHandlers calls are not traced; each execution has the agent's span.
func clientStatsHandler(tp trace.TracerProvider) stats.Handler {
	return otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(traceContext),
		otelgrpc.WithFilter(filters.Not(filters.MethodName("ListHandlers"))),
	)
}
