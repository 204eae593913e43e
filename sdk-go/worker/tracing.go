package worker

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// withTraceContext returns ctx carrying the execution's trace as a remote parent, read from the
// W3C trace context ("traceparent", "tracestate") of the Start message. Spans the handler
// starts, and the handler span of the otelworker interceptor, join the execution's trace.
// The worker starts no span of its own: tracing the handler is the interceptor's job, so that
// there is exactly one handler span.
func withTraceContext(ctx context.Context, carrier map[string]string) context.Context {
	if len(carrier) == 0 {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(carrier))
}
