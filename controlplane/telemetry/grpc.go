package telemetry

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"
)

// GRPCServerHandler traces the RPCs a gRPC server serves with tp, reading W3C trace context
// from the callers; health checks are not traced.
func GRPCServerHandler(tp trace.TracerProvider) stats.Handler {
	return otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(orNoop(tp)),
		otelgrpc.WithPropagators(Propagator),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	)
}

// GRPCClientHandler traces the calls of a gRPC client with tp and sends W3C trace context.
func GRPCClientHandler(tp trace.TracerProvider) stats.Handler {
	return otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(orNoop(tp)),
		otelgrpc.WithPropagators(Propagator),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	)
}

func orNoop(tp trace.TracerProvider) trace.TracerProvider {
	if tp == nil {
		return noop.NewTracerProvider()
	}
	return tp
}
