package worker

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the SDK's tracer.
const tracerName = "github.com/tockhq/tock/sdk-go/worker"

// startSpan starts the span around one handler invocation as a child of the execution's
// trace, carried as W3C trace context in the Start message. With no OpenTelemetry SDK
// installed the span records nothing, but the handler's context still carries the
// execution's trace context, so spans the handler starts join the execution's trace.
func startSpan(ctx context.Context, info Execution, carrier map[string]string) (context.Context, trace.Span) {
	if len(carrier) > 0 {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(carrier))
	}
	return otel.Tracer(tracerName, trace.WithInstrumentationVersion(Version)).Start(ctx,
		"tock.handler "+info.Handler,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("tock.execution.id", info.ID),
			attribute.String("tock.job", info.Job),
			attribute.String("tock.handler", info.Handler),
			attribute.Int("tock.attempt", info.Attempt),
			attribute.Int64("tock.lease_epoch", info.LeaseEpoch),
		))
}

// endSpan ends span with the handler's outcome.
func endSpan(span trace.Span, err error) {
	if err != nil {
		var pe *panicError
		if !errors.As(err, &pe) {
			span.RecordError(err)
		}
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
