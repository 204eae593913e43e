package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Protocols of OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// DefaultSampler is the sampler when OTEL_TRACES_SAMPLER is not set.
const DefaultSampler = "parentbased_always_on"

// TracingConfig says how NewTracing describes the process.
type TracingConfig struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME says otherwise. Default "tockd".
	ServiceName string
	// InstanceID is service.instance.id, such as the replica id. Default: none.
	InstanceID string
	// Getenv reads the environment. Default os.Getenv.
	Getenv func(string) string
}

// Tracing is the process's tracer provider and how it was configured.
type Tracing struct {
	// Provider makes the spans. It is never nil: without an exporter it still gives spans
	// valid (unsampled) ids, so that executions have trace ids, but records nothing.
	Provider *sdktrace.TracerProvider
	// Exporting is true when spans are exported over OTLP.
	Exporting bool
	// Protocol is the OTLP protocol, when exporting.
	Protocol string
	// Sampler is the sampler's description, such as "ParentBased{root:TraceIDRatioBased{0.01}…}".
	Sampler string
}

// NewTracing builds the tracer provider from the environment (see the package documentation).
// Call Shutdown when the process ends, so that the last spans are exported.
func NewTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "tockd"
	}
	if !exportRequested(getenv) {
		// Ids for every execution, nothing recorded: ParentBased(NeverSample) gives a new root
		// a valid, unsampled span context.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
		return &Tracing{Provider: tp, Sampler: "off (no OTLP endpoint)"}, nil
	}
	sampler, err := SamplerFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	protocol := otlpProtocol(getenv)
	var exp *otlptrace.Exporter
	switch protocol {
	case ProtocolGRPC:
		exp, err = otlptracegrpc.New(ctx)
	case ProtocolHTTP:
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: use %s or %s", protocol, ProtocolGRPC, ProtocolHTTP)
	}
	if err != nil {
		return nil, fmt.Errorf("set up the OTLP trace exporter: %w", err)
	}
	attrs := []resource.Option{
		resource.WithAttributes(semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(Version())),
	}
	if cfg.InstanceID != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceInstanceID(cfg.InstanceID)))
	}
	// From the environment after the defaults, so that OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES win.
	attrs = append(attrs, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	res, err := resource.New(ctx, attrs...)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("describe the process for tracing: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
	)
	return &Tracing{Provider: tp, Exporting: true, Protocol: protocol, Sampler: sampler.Description()}, nil
}

// Shutdown exports the spans still buffered, waiting at most 5 seconds, and stops the
// provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := t.Provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// exportRequested reports whether the environment names an OTLP endpoint, and does not turn
// tracing off.
func exportRequested(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" {
		return false // "none"; other exporters are not built in
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// otlpProtocol returns the OTLP protocol for traces: grpc unless the environment says
// otherwise.
func otlpProtocol(getenv func(string) string) string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
	}
	return ProtocolGRPC
}

// SamplerFromEnv returns the sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name:
// always_on, always_off, traceidratio, parentbased_always_on (the default),
// parentbased_always_off or parentbased_traceidratio, with the ratio (0 to 1, default 1) in
// the argument. Replicas and agents should use a parentbased_ sampler, so that they follow
// the decision made where the execution's trace starts.
func SamplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))
	if name == "" {
		name = DefaultSampler
	}
	ratio := func() (float64, error) {
		arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 || r != r {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG %q: want a ratio from 0 to 1, such as 0.01", arg)
		}
		return r, nil
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER %q: use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
}

// EnvHelp describes the environment NewTracing reads, for tockd's help.
const EnvHelp = `

Tracing (OpenTelemetry; see docs/observability.md):
  OTEL_EXPORTER_OTLP_ENDPOINT  export spans over OTLP (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); without it
                               nothing is exported, but executions still get trace ids
  OTEL_EXPORTER_OTLP_PROTOCOL  grpc (default) or http/protobuf
  OTEL_EXPORTER_OTLP_HEADERS, _INSECURE, _CERTIFICATE, _TIMEOUT, _COMPRESSION (and their _TRACES_ forms)
  OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG   sampler (default parentbased_always_on), e.g.
                               parentbased_traceidratio with 0.01
  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES     service.name (default tockd) and other attributes`
