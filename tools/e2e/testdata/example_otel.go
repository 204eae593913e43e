package main

// This file is not part of the example service. The end-to-end tests add it to
// examples/go with `go build -overlay`, so that the example exports its handler spans over
// OTLP, configured by the standard OTEL_* environment, as a service instrumented with
// otelworker would. It reads the environment the way tockd does.

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"

	"github.com/tockhq/tock/controlplane/telemetry"
)

func init() {
	tracing, err := telemetry.NewTracing(context.Background(), telemetry.TracingConfig{ServiceName: "example-go"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "example: tracing:", err)
		os.Exit(2)
	}
	if tracing.Exporting {
		otel.SetTracerProvider(tracing.Provider)
	}
}
