package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tockhq/tock/controlplane/dbclock"
	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/telemetry"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

// TestDispatchSpan checks that an assignment is traced as a child of its execution's root span
// and carries the dispatch span's context to the agent, with why the agent was chosen.
func TestDispatchSpan(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	now := time.Now().UTC()
	d := New(Config{
		ReplicaID:      "replica-a",
		TracerProvider: tp,
		Registerer:     prometheus.NewRegistry(),
		Clock:          dbclock.New(dbclock.Config{}, func(context.Context) (time.Time, error) { return time.Now(), nil }),
	}, nil, nil)

	e := store.Execution{ID: "0190f3a1-7c2b-7d4e-8f00-0000000000aa", Job: "nightly", Handler: "report", Attempt: 1,
		Trigger: store.TriggerSchedule, NominalTime: now.Add(-time.Second), NotBefore: now.Add(-time.Second),
		AssignedAt: now, LeaseEpoch: 3}
	root := telemetry.StartExecutionTrace(t.Context(), telemetry.Tracer(tp), "tock.fire nightly", &e, time.Time{})
	root.End()

	asgs := []*agentv1.Assignment{assignmentToProto(&e, time.Minute)}
	require.Equal(t, e.TraceContext, asgs[0].GetTraceContext()[TraceContextKey])
	spans := d.obs.traceAssignments([]store.Execution{e}, []assignFacts{{
		agentID: "agent-1", service: "billing", inFlight: 2, weight: 3, capacity: 8, batch: 1,
	}}, asgs)
	endDispatch(spans, true)

	ended := rec.Ended()
	require.Len(t, ended, 2)
	dispatch := ended[1]
	require.Equal(t, "tock.dispatch nightly", dispatch.Name())
	require.Equal(t, root.SpanContext().SpanID(), dispatch.Parent().SpanID(), "a child of the execution's root")
	require.Equal(t, root.SpanContext().TraceID(), dispatch.SpanContext().TraceID())
	sent := telemetry.SpanContextOf(asgs[0].GetTraceContext()[TraceContextKey])
	require.Equal(t, dispatch.SpanContext().SpanID(), sent.SpanID(), "the agent gets the dispatch span as its parent")
	attrs := map[string]string{}
	for _, kv := range dispatch.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, v := range map[string]string{
		"tock.execution.id":      e.ID,
		"tock.agent.id":          "agent-1",
		"tock.agent.service":     "billing",
		"tock.agent.in_flight":   "2",
		"tock.agent.weight":      "3",
		"tock.agent.capacity":    "8",
		"tock.dispatch.strategy": "weighted_least_connections",
		"tock.replica.id":        "replica-a",
		"tock.lease_epoch":       "3",
	} {
		require.Equal(t, v, attrs[k], k)
	}
}
