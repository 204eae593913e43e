package daemon

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tockhq/tock/controlplane/telemetry"
)

// startTracing builds the tracer provider from the OTEL_* environment and routes the
// OpenTelemetry SDK's own errors (an unreachable collector, say) to log.
func startTracing(ctx context.Context, cfg Config, log *slog.Logger) (*telemetry.Tracing, error) {
	tracing, err := telemetry.NewTracing(ctx, telemetry.TracingConfig{ServiceName: "tockd", InstanceID: cfg.ReplicaID})
	if err != nil {
		return nil, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing", "err", err)
	}))
	if tracing.Exporting {
		log.Info("exporting traces over OTLP", "protocol", tracing.Protocol, "sampler", tracing.Sampler)
	}
	return tracing, nil
}

// stopTracing exports the spans still buffered.
func stopTracing(ctx context.Context, tracing *telemetry.Tracing, log *slog.Logger) {
	if err := tracing.Shutdown(ctx); err != nil {
		log.Warn("stop tracing", "err", err)
	}
}

// withTraceContext reads the W3C trace context of REST requests, so that the gateway's gRPC
// call, and a trigger's span (as a link), carry the caller's trace.
func withTraceContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(telemetry.TraceparentKey) != "" {
			r = r.WithContext(telemetry.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		next.ServeHTTP(w, r)
	})
}

// devAgentTelemetry is what the development agent shares with tockd: the tracer provider, so
// that its spans join the executions' traces, and the metrics registry, so that /metrics shows
// its tock_agent_* metrics too.
type devAgentTelemetry struct {
	tp  trace.TracerProvider
	reg prometheus.Registerer
}
