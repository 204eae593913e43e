// Package telemetry holds what tockd's components share to be observed: the OpenTelemetry
// tracer provider built from the standard OTEL_* environment, the helpers that start an
// execution's trace and carry it as a W3C traceparent, the slog handler that puts trace and
// span ids on log lines, and the build-info metric.
//
// # One trace per execution
//
// An execution's trace starts when the execution is created: the scheduler's fire span
// ("tock.fire <job>") or the API's trigger span ("tock.trigger <job>") is a new root, and its
// traceparent is stored with the execution (store.Execution.TraceContext, TraceID). Every
// later span joins that trace from the stored traceparent, whichever replica or process makes
// it: the dispatch span on the replica that assigns the execution (a child of the root; a
// retry, which keeps the traceparent, gets a dispatch span of its own under the same root),
// the agent's span (a child of the dispatch span, whose context the assignment carries), and
// the handler's span in the SDK (a child of the agent's). A span cannot start in one process
// and end in another, so the root span is short: it ends when the execution is recorded.
//
//	tock.fire <job> | tock.trigger <job>          tockd (the replica that fired)
//	└─ tock.dispatch <job>   (one per attempt)     tockd (the replica that owns the agent)
//	   └─ tock.agent.execute <handler>             tock-agent
//	      └─ tock.handler <handler>                the service, through the SDK
//
// The sampling decision is made once, at the root, by OTEL_TRACES_SAMPLER; every process
// downstream follows its parent (parentbased_*), so a trace is recorded whole or not at all.
//
// # Configuration
//
// NewTracing reads OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
// OTEL_EXPORTER_OTLP_PROTOCOL (grpc or http/protobuf), OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the exporters read
// the other OTEL_EXPORTER_OTLP_* variables (headers, TLS, timeout, compression) themselves.
// Without an endpoint nothing is recorded or exported, but executions still get trace ids, so
// that log lines of one execution can be found together.
package telemetry
