package otelworker

import (
	"context"
	"errors"

	"github.com/tockhq/tock/sdk-go/worker"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans, the name of this package.
const ScopeName = "github.com/tockhq/tock/sdk-go/worker/otelworker"

// Option configures the interceptor.
type Option func(*config)

type config struct {
	provider trace.TracerProvider
}

// WithTracerProvider sets the provider of the tracer that starts the spans. Default: the
// global provider (otel.GetTracerProvider), read at each execution, so that one installed
// after the worker is built is used.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.provider = tp }
}

// Interceptor starts a span around every handler call. Make it with NewInterceptor.
type Interceptor struct {
	worker.InterceptorBase
	provider trace.TracerProvider // nil: the global provider
}

// NewInterceptor returns an interceptor that traces handlers; see the package documentation.
func NewInterceptor(opts ...Option) *Interceptor {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return &Interceptor{provider: c.provider}
}

// InterceptExecute wraps next in a span.
func (i *Interceptor) InterceptExecute(next worker.ExecuteFunc) worker.ExecuteFunc {
	return func(ctx context.Context, in worker.Payload) (worker.Payload, error) {
		ex, ok := worker.ExecutionFromContext(ctx)
		if !ok {
			return next(ctx, in)
		}
		ctx, span := i.tracer().Start(ctx, "tock.handler "+ex.Handler,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attributes(ex)...))
		defer span.End()
		out, err := next(ctx, in)
		span.SetAttributes(attribute.String("tock.outcome", outcome(ctx, err)))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			var e *worker.Error
			if errors.As(err, &e) {
				span.SetAttributes(
					attribute.String("tock.error.kind", e.Kind),
					attribute.Bool("tock.error.retryable", e.Retryable),
				)
			}
		}
		return out, err
	}
}

func (i *Interceptor) tracer() trace.Tracer {
	tp := i.provider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName, trace.WithInstrumentationVersion(worker.Version))
}

func attributes(ex worker.Execution) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("tock.execution.id", ex.ID),
		attribute.String("tock.job", ex.Job),
		attribute.String("tock.handler", ex.Handler),
		attribute.Int("tock.attempt", ex.Attempt),
		attribute.Int64("tock.lease_epoch", ex.LeaseEpoch),
	}
	if ex.ShardTotal > 1 {
		attrs = append(attrs,
			attribute.Int("tock.shard.index", ex.ShardIndex),
			attribute.Int("tock.shard.total", ex.ShardTotal))
	}
	return attrs
}

// outcome names how the execution ends, as the control plane will record it. The worker
// reports a failure as a timeout or a cancellation when the handler's context is done, except
// at shutdown, when it reports a retryable failure.
func outcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "SUCCEEDED"
	case ctx.Err() == nil, errors.Is(context.Cause(ctx), worker.ErrShutdown):
		return "FAILED"
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "TIMED_OUT"
	default:
		return "CANCELLED"
	}
}
