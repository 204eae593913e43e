package scheduler

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/telemetry"
)

// observer traces and counts the fires the scheduler records. Each dispatched fire starts its
// execution's trace with a "tock.fire <job>" span: it starts when the fire is planned, its
// traceparent is stored with the execution, and it ends once the fire is recorded, saying how
// late the fire was reached. The dispatch, agent and handler spans of the execution, and of
// its retries, join the same trace.
type observer struct {
	tracer trace.Tracer
	fires  *prometheus.CounterVec
}

func newObserver(tp trace.TracerProvider, reg prometheus.Registerer) *observer {
	o := &observer{
		tracer: telemetry.Tracer(tp),
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tock_fires_total",
			Help: "Fires recorded by this replica, by outcome (dispatched, skipped_overlap, missed, skipped_paused).",
		}, []string{"outcome"}),
	}
	for _, outcome := range []store.FireOutcome{store.FireDispatched, store.FireSkippedOverlap, store.FireMissed, store.FireSkippedPaused} {
		o.fires.WithLabelValues(string(outcome))
	}
	if reg != nil {
		reg.MustRegister(o.fires)
	}
	return o
}

// fireKey names one fire: its job and its nominal time in microseconds (what the stores keep).
type fireKey struct {
	job     string
	nominal int64
}

// fireBatch holds the fire spans of one FireDueJobs call until it returns. It is used by one
// goroutine.
type fireBatch struct {
	o     *observer
	ctx   context.Context
	spans map[fireKey]trace.Span
}

// begin starts collecting the spans of one claim.
func (o *observer) begin(ctx context.Context) *fireBatch {
	return &fireBatch{o: o, ctx: ctx, spans: make(map[fireKey]trace.Span)}
}

// planned starts a fire span for every dispatched fire of plan, made at database time now,
// and stamps the fire's execution with the span's trace context. It is called inside the
// store's transaction, perhaps more than once for one fire when the transaction is retried:
// the span of an earlier try is dropped unended, so it is never exported.
func (b *fireBatch) planned(now time.Time, plan *store.FirePlan) {
	start := time.Now()
	for i := range plan.Fires {
		f := &plan.Fires[i]
		if f.Outcome != store.FireDispatched || f.Execution == nil {
			continue
		}
		e := f.Execution
		late := now.Sub(f.NominalTime)
		attrs := []attribute.KeyValue{
			attribute.Float64("tock.fire.lateness_seconds", max(late, 0).Seconds()),
			attribute.Bool("tock.fire.claimed_ahead", late < 0),
		}
		if late < 0 {
			attrs = append(attrs, attribute.Float64("tock.fire.ahead_seconds", (-late).Seconds()))
		}
		b.spans[fireKey{e.Job, f.NominalTime.UnixMicro()}] = telemetry.StartExecutionTrace(b.ctx, b.o.tracer, "tock.fire "+e.Job, e, start, attrs...)
	}
}

// end counts the fires recorded and ends the spans of the dispatched ones. Spans of fires the
// store did not record (another replica recorded them first, or the claim failed) are dropped.
func (b *fireBatch) end(fires []store.Fire, err error) {
	if err != nil {
		return
	}
	for _, f := range fires {
		b.o.fires.WithLabelValues(string(f.Outcome)).Inc()
		span, ok := b.spans[fireKey{f.Job, f.NominalTime.UnixMicro()}]
		if !ok || f.Execution == nil {
			continue
		}
		span.AddEvent("fire recorded", trace.WithAttributes(
			attribute.String("tock.fire.outcome", string(f.Outcome)),
		))
		telemetry.EndExecutionTrace(span, *f.Execution)
	}
}
