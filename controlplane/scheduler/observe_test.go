package scheduler_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/sqlite"
	"github.com/tockhq/tock/controlplane/telemetry"
)

// TestFireStartsTheExecutionTrace checks that a dispatched fire starts its execution's trace:
// a "tock.fire <job>" root span, ended once the fire is recorded, whose traceparent is stored
// with the execution; and that fires are counted by outcome.
func TestFireStartsTheExecutionTrace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	st, err := sqlite.Open(ctx, t.TempDir()+"/tock.db", sqlite.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	_, err = st.CreateJob(ctx, store.Job{
		Name: "tick", Handler: "echo", Payload: []byte(`{}`),
		Schedule:   &store.Schedule{Cron: "* * * * * *"},
		NextFireAt: now.Add(-2 * time.Second),
	})
	require.NoError(t, err)

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reg := prometheus.NewRegistry()
	var fired []store.Fire
	s := scheduler.New(scheduler.Config{TracerProvider: tp, Registerer: reg, Horizon: time.Second, PollInterval: 100 * time.Millisecond},
		st, func(f []store.Fire) { fired = append(fired, f...) })
	_, err = s.Tick(ctx)
	require.NoError(t, err)

	var dispatched []store.Fire
	for _, f := range fired {
		if f.Outcome == store.FireDispatched {
			dispatched = append(dispatched, f)
		}
	}
	require.NotEmpty(t, dispatched)
	spans := rec.Ended()
	require.Len(t, spans, len(dispatched), "one fire span per dispatched fire")
	for _, f := range dispatched {
		e, err := st.GetExecution(ctx, f.ExecutionID)
		require.NoError(t, err)
		require.NotEmpty(t, e.TraceContext)
		sc := telemetry.SpanContextOf(e.TraceContext)
		require.True(t, sc.IsValid())
		require.Equal(t, sc.TraceID().String(), e.TraceID)
		var span sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.SpanContext().SpanID() == sc.SpanID() {
				span = s
			}
		}
		require.NotNil(t, span, "the execution's traceparent names its fire span")
		require.Equal(t, "tock.fire tick", span.Name())
		require.False(t, span.Parent().IsValid(), "a fire span is a root")
		attrs := map[string]string{}
		for _, kv := range span.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		require.Equal(t, e.ID, attrs["tock.execution.id"])
		require.Equal(t, "tick", attrs["tock.job"])
		require.Equal(t, "schedule", attrs["tock.trigger"])
		require.Contains(t, attrs, "tock.fire.lateness_seconds")
	}

	families, err := reg.Gather()
	require.NoError(t, err)
	require.Equal(t, float64(len(dispatched)), counter(t, families, "tock_fires_total", "dispatched"))
}

// counter returns the value of the counter name with the one label value given.
func counter(t *testing.T, families []*dto.MetricFamily, name, label string) float64 {
	t.Helper()
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0
}
