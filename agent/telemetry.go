package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// tracerShutdownTimeout bounds the flush of the spans still buffered when the agent stops.
const tracerShutdownTimeout = 5 * time.Second

// serviceName is the service.name of the agent's spans unless OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const serviceName = "tock-agent"

// envHelp ends tock-agent's usage text.
const envHelp = `
Environment:
  TOCK_APP_TOKEN               default of --app-token
  CONSUL_HTTP_ADDR             with --discovery consul: the Consul agent's HTTP API (default 127.0.0.1:8500;
                               https://… or unix://… work too)
  CONSUL_HTTP_TOKEN            ACL token (or CONSUL_HTTP_TOKEN_FILE); it needs service:write on --consul-service
  CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT, CONSUL_CAPATH, CONSUL_CLIENT_CERT,
  CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME, CONSUL_NAMESPACE, CONSUL_PARTITION
                               as for the consul command
  OTEL_EXPORTER_OTLP_ENDPOINT  export traces over OTLP (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); without
                               either, no spans are exported
  OTEL_EXPORTER_OTLP_PROTOCOL  grpc (default) or http/protobuf (or OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)
  OTEL_EXPORTER_OTLP_HEADERS, _INSECURE, _CERTIFICATE, _TIMEOUT, _COMPRESSION (and their _TRACES_ forms)
  OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG   sampler (default parentbased_always_on)
  OTEL_SERVICE_NAME            service.name of the spans (default tock-agent); OTEL_RESOURCE_ATTRIBUTES
`

// otlpProtocol returns the OTLP protocol the environment asks for traces: grpc unless it says
// otherwise.
func otlpProtocol(getenv func(string) string) string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
	}
	return "grpc"
}

// tracerProviderFromEnv returns a tracer provider that batches spans to an OTLP exporter
// configured by the standard OTEL_* environment, or nil when the environment names no OTLP
// endpoint (then the agent makes no spans at all). The exporter reads its endpoint, headers,
// TLS, timeout and compression from the environment itself, and the SDK its sampler
// (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG) and batching (OTEL_BSP_*).
func tracerProviderFromEnv(ctx context.Context, getenv func(string) string) (*sdktrace.TracerProvider, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	var exp *otlptrace.Exporter
	var err error
	switch p := otlpProtocol(getenv); p {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("OTLP protocol %q is not supported: want grpc or http/protobuf", p)
	}
	if err != nil {
		return nil, fmt.Errorf("set up OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName), semconv.ServiceVersion(Version)),
		resource.WithFromEnv(), // after the defaults, so that OTEL_SERVICE_NAME wins
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("describe the agent for tracing: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
