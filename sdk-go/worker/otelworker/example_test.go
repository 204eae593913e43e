package otelworker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/otelworker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Trace every handler as part of its execution's trace. In a real service the tracer provider
// exports to an OTLP collector, and is usually installed globally with otel.SetTracerProvider,
// in which case NewInterceptor needs no option.
func ExampleNewInterceptor() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	w := worker.New(worker.Options{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Interceptors: []worker.Interceptor{otelworker.NewInterceptor(otelworker.WithTracerProvider(tp))},
	})
	w.Handle("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	_, _ = agent.Run(context.Background(), workertest.Start{
		Handler: "echo",
		// The agent passes the execution's W3C trace context along with the Start message.
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	})
	for _, s := range spans.Ended() {
		fmt.Println(s.Name(), s.SpanContext().TraceID(), s.Parent().SpanID())
	}
	// Output: tock.handler echo 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7
}
