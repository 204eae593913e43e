package agent

import (
	"context"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the agent's tracer.
const tracerName = "github.com/tockhq/tock/agent"

// startSpan starts the agent's span for an execution, from assignment to result, as a child
// of the execution's trace. The assignment's trace context is passed to the service
// unchanged, so the handler's span is a sibling of this one under the dispatch span.
func startSpan(asg *agentv1.Assignment) trace.Span {
	ctx := context.Background()
	if tc := asg.GetTraceContext(); len(tc) > 0 {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(tc))
	}
	_, span := otel.Tracer(tracerName, trace.WithInstrumentationVersion(Version)).Start(ctx,
		"tock.agent.execute "+asg.GetHandler(),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("tock.execution.id", asg.GetExecutionId()),
			attribute.String("tock.job", asg.GetJob()),
			attribute.String("tock.handler", asg.GetHandler()),
			attribute.Int("tock.attempt", int(asg.GetAttempt())),
			attribute.Int64("tock.lease_epoch", asg.GetLeaseEpoch()),
		))
	return span
}

// endSpan ends an execution's span with its result.
func endSpan(span trace.Span, r *agentv1.Result) {
	span.SetAttributes(attribute.String("tock.outcome", r.GetOutcome().String()))
	if r.GetOutcome() != agentv1.Outcome_OUTCOME_SUCCEEDED {
		span.SetStatus(codes.Error, r.GetError().GetMessage())
	}
	span.End()
}
