package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/telemetry"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestSamplerFromEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
		err  string
	}{
		{env: nil, want: "ParentBased{root:AlwaysOnSampler"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, want: "AlwaysOffSampler"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}, want: "ParentBased{root:TraceIDRatioBased{0.01}"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio"}, want: "TraceIDRatioBased{1}"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, err: `OTEL_TRACES_SAMPLER_ARG "2": want a ratio from 0 to 1`},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, err: `OTEL_TRACES_SAMPLER "jaeger_remote": use always_on`},
	} {
		s, err := telemetry.SamplerFromEnv(env(tc.env))
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		require.Contains(t, s.Description(), tc.want)
	}
}

func TestTracingWithoutEndpoint(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tr, err := telemetry.NewTracing(ctx, telemetry.TracingConfig{Getenv: env(nil)})
	require.NoError(t, err)
	defer func() { require.NoError(t, tr.Shutdown(ctx)) }()
	require.False(t, tr.Exporting)

	e := store.Execution{Job: "nightly", Handler: "report"}
	span := telemetry.StartExecutionTrace(ctx, telemetry.Tracer(tr.Provider), "tock.trigger nightly", &e, time.Time{})
	span.End()
	require.False(t, span.IsRecording(), "nothing is recorded without an exporter")
	require.Len(t, e.TraceID, 32, "but the execution still gets a trace id")
	sc := telemetry.SpanContextOf(e.TraceContext)
	require.True(t, sc.IsValid())
	require.False(t, sc.IsSampled(), "and downstream processes follow: nothing sampled")
	require.Equal(t, e.TraceID, sc.TraceID().String())
}

func TestTracingBadProtocol(t *testing.T) {
	t.Parallel()
	_, err := telemetry.NewTracing(t.Context(), telemetry.TracingConfig{Getenv: env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
	})})
	require.ErrorContains(t, err, `OTEL_EXPORTER_OTLP_PROTOCOL "http/json": use grpc or http/protobuf`)
}

func TestStartExecutionTraceIsARootLinkedToTheRequest(t *testing.T) {
	t.Parallel()
	tr, err := telemetry.NewTracing(t.Context(), telemetry.TracingConfig{Getenv: env(nil)})
	require.NoError(t, err)
	request := telemetry.ContextWithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	e := store.Execution{Job: "nightly"}
	span := telemetry.StartExecutionTrace(request, telemetry.Tracer(tr.Provider), "tock.trigger nightly", &e, time.Time{})
	span.End()
	require.NotEqual(t, "4bf92f3577b34da6a3ce929d0e0e4736", e.TraceID, "each execution has a trace of its own")
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "json", "info", false)
	require.NoError(t, err)
	ctx := telemetry.ContextWithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	log.With("component", "dispatch").InfoContext(ctx, "lease expired", "execution", "e1")
	log.InfoContext(context.Background(), "no execution")

	dec := json.NewDecoder(&buf)
	var first, second map[string]any
	require.NoError(t, dec.Decode(&first))
	require.NoError(t, dec.Decode(&second))
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", first["trace_id"])
	require.Equal(t, "00f067aa0ba902b7", first["span_id"])
	require.Equal(t, "dispatch", first["component"])
	require.NotContains(t, second, "trace_id")

	_, err = telemetry.NewLogger(&buf, "yaml", "", false)
	require.ErrorContains(t, err, `--log-format "yaml"`)
	_, err = telemetry.NewLogger(&buf, "", "loud", false)
	require.ErrorContains(t, err, `--log-level "loud"`)
	text, err := telemetry.NewLogger(&buf, "", "", true)
	require.NoError(t, err)
	require.IsType(t, &telemetry.LogHandler{}, text.Handler())
	require.True(t, text.Enabled(context.Background(), slog.LevelInfo))
	require.False(t, text.Enabled(context.Background(), slog.LevelDebug))
}
