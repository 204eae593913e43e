package api

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/telemetry"
)

// traceTrigger starts the trace of an execution created through the API: a new root span,
// "tock.trigger <job>", linked to the request's span when the caller sent trace context, whose
// traceparent is stored with the execution. The returned function ends the span once the
// execution is created (or was not). A repeated request id creates nothing: the span then
// names the execution the first request created, which runs in that request's trace.
func (s *Server) traceTrigger(ctx context.Context, e *store.Execution) func(out store.Execution, created bool, err error) {
	span := telemetry.StartExecutionTrace(ctx, s.tracer, "tock.trigger "+e.Job, e, time.Time{})
	return func(out store.Execution, created bool, err error) {
		if err != nil {
			span.SetStatus(codes.Error, "execution not created")
			span.End()
			return
		}
		if !created {
			span.SetAttributes(attribute.Bool("tock.trigger.repeated_request", true))
		}
		telemetry.EndExecutionTrace(span, out)
	}
}
