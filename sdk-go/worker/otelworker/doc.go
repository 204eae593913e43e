// Package otelworker traces Tock handlers with OpenTelemetry.
//
// Its interceptor starts one span around every handler call, as a child of the execution's
// trace: the control plane starts the trace when it fires or dispatches the execution, the
// agent passes its W3C trace context ("traceparent", "tracestate") in the Start message, and
// the worker puts that context in the handler's context before any interceptor runs. One
// trace per execution then shows the fire, the dispatch, the agent and the handler, and any
// span the handler starts from its context nests under the handler span.
//
//	w := worker.New(worker.Options{
//		Interceptors: []worker.Interceptor{otelworker.NewInterceptor()},
//	})
//
// Put it first in Options.Interceptors so that its span covers the other interceptors. The
// worker itself starts no span, so there is exactly one handler span per execution.
//
// The span is named "tock.handler <handler>", has kind server, and carries the attributes
// tock.execution.id, tock.job, tock.handler, tock.attempt and tock.lease_epoch (plus
// tock.shard.index and tock.shard.total for sharded jobs). When the handler fails, the span's
// status is Error with the error's message, the error is recorded as an event, and
// tock.error.kind and tock.error.retryable describe it. tock.outcome says how the execution
// ended: SUCCEEDED, FAILED, TIMED_OUT or CANCELLED.
package otelworker
