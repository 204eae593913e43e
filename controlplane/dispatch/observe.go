package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/telemetry"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

// Defaults of the observer.
const (
	// statsInterval is how often the pending executions are counted.
	statsInterval = 5 * time.Second
)

// strategyOf names the routing strategy that placed e, as dispatch spans show it.
func strategyOf(e *store.Execution) string {
	if e.Route.Strategy == "" {
		return string(store.RouteWeightedLeastConnections)
	}
	return string(e.Route.Strategy)
}

// dispatchReasons say, on dispatch spans, why a strategy chose the agent it chose.
var dispatchReasons = map[store.RoutingStrategy]string{
	store.RouteWeightedLeastConnections: "fewest in-flight executions per unit of weight among the eligible agents with free capacity",
	store.RouteLeastConnections:         "fewest in-flight executions among the eligible agents with free capacity",
	store.RouteRoundRobin:               "the next eligible agent in turn",
	store.RouteWeightedRoundRobin:       "the next eligible agent in turn, each as often as its weight",
	store.RouteRandom:                   "an eligible agent with free capacity, at random",
	store.RouteConsistentHash:           "the agent the job's hash key maps to",
	store.RouteBroadcast:                "one execution per matching agent: this one is pinned to its agent",
	store.RouteSharding:                 "one execution per shard, placed by weighted least connections",
	store.RouteShortestExpectedJobFirst: "shortest expected job first while capacity is scarce, then weighted least connections",
}

// Agent health, the values of tock_agents' health label.
const (
	healthReady        = "ready"
	healthDraining     = "draining"
	healthUnhealthy    = "unhealthy"
	healthDisconnected = "disconnected"
)

// latencyBuckets are the bounds, in seconds, of the lateness and waiting histograms: from
// half a millisecond to about an hour.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// runBuckets are the bounds, in seconds, of the run duration histogram: from a millisecond to
// a few hours.
var runBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400}

// observer is what the dispatcher traces and measures beyond its core metrics: the dispatch
// span of every assignment, the lateness and duration histograms, the pending executions and
// the agents' health, and what becomes of progress and log reports.
type observer struct {
	d       *Dispatcher
	tracer  trace.Tracer
	reports *reportMetrics

	fireLateness    prometheus.Histogram
	scheduleToStart prometheus.Histogram
	runDuration     *prometheus.HistogramVec
	pending         prometheus.Gauge
	oldestPending   prometheus.Gauge
}

func newObserver(d *Dispatcher) *observer {
	o := &observer{
		d:       d,
		tracer:  telemetry.Tracer(d.cfg.TracerProvider),
		reports: newReportMetrics(d.cfg.Registerer),
		fireLateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tock_fire_lateness_seconds",
			Help:    "Time from a fire's nominal time to the assignment of its execution to an agent (first attempts of scheduled fires).",
			Buckets: latencyBuckets,
		}),
		scheduleToStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tock_schedule_to_start_seconds",
			Help:    "Time from an execution's not-before time (its nominal time, or a retry's backoff) to its handler's start, observed when its result is recorded.",
			Buckets: latencyBuckets,
		}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tock_execution_run_seconds",
			Help:    "Time from an execution's handler start to its end, by final state.",
			Buckets: runBuckets,
		}, []string{"state"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tock_executions_pending",
			Help: "PENDING executions whose not-before time has passed (all replicas see the same database; counted every 5s).",
		}),
		oldestPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tock_executions_pending_oldest_age_seconds",
			Help: "How long the oldest due PENDING execution has waited since its not-before time; 0 when none waits.",
		}),
	}
	for _, s := range []store.ExecState{store.ExecSucceeded, store.ExecFailed, store.ExecTimedOut, store.ExecCancelled, store.ExecLost} {
		d.metrics.executions.WithLabelValues(string(s))
		if s != store.ExecLost {
			o.runDuration.WithLabelValues(string(s))
		}
	}
	if reg := d.cfg.Registerer; reg != nil {
		reg.MustRegister(o.fireLateness, o.scheduleToStart, o.runDuration, o.pending, o.oldestPending, agentCollector{d})
	}
	return o
}

// assignFacts is what a session knew of its agent when it sent an assignment: why the agent
// was a fit.
type assignFacts struct {
	agentID, service string
	inFlight         int // before this assignment
	weight, capacity int
	batch            int // assignments sent together
}

// startDispatch starts the dispatch span of an assignment as a child of the execution's root
// span, and returns it with the traceparent the assignment carries to the agent, so that the
// agent's span is the dispatch span's child. It also observes the fire's lateness.
func (o *observer) startDispatch(e *store.Execution, f assignFacts) (trace.Span, string) {
	if e.Trigger == store.TriggerSchedule && e.Attempt <= 1 && !e.NominalTime.IsZero() {
		o.fireLateness.Observe(max(e.AssignedAt.Sub(e.NominalTime), 0).Seconds())
	}
	// The span starts when the claim's transaction assigned the execution: AssignedAt is on
	// the database clock, read back onto this replica's through the measured offset.
	now := time.Now()
	start := now.Add(e.AssignedAt.Sub(o.d.clock.Now()))
	if e.AssignedAt.IsZero() || start.After(now) {
		start = now
	}
	ctx := telemetry.ExecutionContext(context.Background(), e)
	attrs := append(telemetry.ExecutionAttributes(e),
		attribute.Int64("tock.lease_epoch", e.LeaseEpoch),
		attribute.String("tock.agent.id", f.agentID),
		attribute.String("tock.agent.service", f.service),
		attribute.String("tock.replica.id", o.d.cfg.ReplicaID),
		attribute.String("tock.dispatch.strategy", strategyOf(e)),
		attribute.String("tock.dispatch.reason", dispatchReasons[store.RoutingStrategy(strategyOf(e))]),
		attribute.Int("tock.agent.in_flight", f.inFlight),
		attribute.Int("tock.agent.weight", f.weight),
		attribute.Int("tock.agent.capacity", f.capacity),
		attribute.Int("tock.dispatch.batch", f.batch),
		attribute.Float64("tock.schedule_to_assign_seconds", max(e.AssignedAt.Sub(e.NotBefore), 0).Seconds()),
	)
	if e.Route.ShardTotal > 0 {
		attrs = append(attrs, attribute.Int("tock.shard.index", e.Route.ShardIndex), attribute.Int("tock.shard.total", e.Route.ShardTotal))
	}
	if e.Route.PinnedAgent != "" {
		attrs = append(attrs, attribute.String("tock.dispatch.pinned_agent", e.Route.PinnedAgent))
	}
	ctx, span := o.tracer.Start(ctx, "tock.dispatch "+e.Job,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithTimestamp(start),
		trace.WithAttributes(attrs...))
	if log := o.d.cfg.Logger; log.Enabled(ctx, slog.LevelDebug) {
		log.DebugContext(ctx, "execution assigned", "execution", e.ID, "job", e.Job, "attempt", e.Attempt,
			"epoch", e.LeaseEpoch, "agent", f.agentID, "in_flight", f.inFlight, "weight", f.weight)
	}
	return span, telemetry.Traceparent(ctx)
}

// endDispatch ends dispatch spans once their assignments were queued on the session, or not.
func endDispatch(spans []trace.Span, sent bool) {
	for _, span := range spans {
		if !sent {
			span.SetStatus(codes.Error, "agent session lost before the assignment was sent; the lease lapses and the execution is retried")
		}
		span.End()
	}
}

// finished observes an execution whose result was applied.
func (o *observer) finished(e store.Execution) {
	o.d.metrics.executions.WithLabelValues(string(e.State)).Inc()
	if log := o.d.cfg.Logger; log.Enabled(context.Background(), slog.LevelDebug) {
		log.DebugContext(telemetry.ExecutionContext(context.Background(), &e), "execution finished",
			"execution", e.ID, "job", e.Job, "attempt", e.Attempt, "state", e.State, "agent", e.AgentID)
	}
	if e.StartedAt.IsZero() {
		return
	}
	if !e.NotBefore.IsZero() {
		o.scheduleToStart.Observe(max(e.StartedAt.Sub(e.NotBefore), 0).Seconds())
	}
	if !e.FinishedAt.IsZero() {
		o.runDuration.WithLabelValues(string(e.State)).Observe(max(e.FinishedAt.Sub(e.StartedAt), 0).Seconds())
	}
}

// rejected counts and logs a result the store did not apply, with its execution's trace ids
// when the execution can be read.
func (o *observer) rejected(ctx context.Context, agentID string, out store.CompletionOutcome) {
	o.d.metrics.rejectedResults.Inc()
	if e, err := o.d.store.GetExecution(ctx, out.ID); err == nil {
		ctx = telemetry.ExecutionContext(ctx, &e)
	}
	o.d.cfg.Logger.WarnContext(ctx, "result rejected", "agent", agentID, "execution", out.ID, "epoch", out.Epoch, "reason", out.Reason)
}

// lost counts and logs an execution whose lease expired, and records the expiry as a span of
// its trace.
func (o *observer) lost(ctx context.Context, e store.Execution) {
	o.d.metrics.executions.WithLabelValues(string(store.ExecLost)).Inc()
	ctx = telemetry.ExecutionContext(ctx, &e)
	ctx, span := o.tracer.Start(ctx, "tock.lease_expired "+e.Job, trace.WithAttributes(append(telemetry.ExecutionAttributes(&e),
		attribute.Int64("tock.lease_epoch", e.LeaseEpoch),
		attribute.String("tock.agent.id", e.AgentID),
		attribute.String("tock.replica.id", o.d.cfg.ReplicaID))...))
	span.SetStatus(codes.Error, "lease expired")
	o.d.cfg.Logger.WarnContext(ctx, "lease expired", "execution", e.ID, "job", e.Job, "agent", e.AgentID, "attempt", e.Attempt)
	span.End()
}

// statsLoop counts the pending executions every statsInterval.
func (o *observer) statsLoop(ctx context.Context) {
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		o.countPending(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *observer) countPending(ctx context.Context) {
	st, err := o.d.store.PendingStats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			o.d.cfg.Logger.Warn("count pending executions", "err", err)
		}
		return
	}
	o.pending.Set(float64(st.Due))
	age := 0.0
	if !st.OldestDue.IsZero() {
		age = max(st.Now.Sub(st.OldestDue), 0).Seconds()
	}
	o.oldestPending.Set(age)
}

// agentCollector reports the agents this replica holds sessions with, when scraped: how many
// in each health, and their in-flight executions and capacity per service.
type agentCollector struct{ d *Dispatcher }

var (
	agentsDesc = prometheus.NewDesc("tock_agents",
		"Agents this replica owns, by health: ready, draining, unhealthy (local service down) or disconnected (no live session).",
		[]string{"health"}, nil)
	inFlightDesc = prometheus.NewDesc("tock_agents_in_flight",
		"Executions assigned to or running on the agents this replica owns, by agent service.",
		[]string{"service"}, nil)
	capacityDesc = prometheus.NewDesc("tock_agents_capacity",
		"The most executions the connected agents this replica owns run at once, by agent service.",
		[]string{"service"}, nil)
)

// Describe sends the descriptors of the agent metrics.
func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- agentsDesc
	ch <- inFlightDesc
	ch <- capacityDesc
}

// Collect reads the sessions.
func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	health := map[string]int{healthReady: 0, healthDraining: 0, healthUnhealthy: 0, healthDisconnected: 0}
	inFlight := map[string]int{}
	capacity := map[string]int{}
	c.d.sessionsMu.Lock()
	for _, s := range c.d.sessions {
		s.mu.Lock()
		service := s.agent.Service
		if s.hello != nil && s.hello.GetService() != "" {
			service = s.hello.GetService()
		}
		switch {
		case !s.up:
			health[healthDisconnected]++
		case s.draining:
			health[healthDraining]++
		case !s.healthy:
			health[healthUnhealthy]++
		default:
			health[healthReady]++
		}
		inFlight[service] += len(s.outstanding)
		if s.up {
			capacity[service] += int(s.hello.GetCapacity())
		}
		s.mu.Unlock()
	}
	c.d.sessionsMu.Unlock()
	for h, n := range health {
		ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(n), h)
	}
	for svc, n := range inFlight {
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(n), svc)
	}
	for svc, n := range capacity {
		ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(n), svc)
	}
}

// assignFactsLocked returns the facts of n assignments to the session's agent, but for their
// in-flight counts. s.mu must be held.
func (s *session) assignFactsLocked(n int) []assignFacts {
	f := assignFacts{
		agentID:  s.agent.ID,
		service:  s.hello.GetService(),
		weight:   max(1, int(s.hello.GetWeight())),
		capacity: int(s.hello.GetCapacity()),
		batch:    n,
	}
	facts := make([]assignFacts, n)
	for i := range facts {
		facts[i] = f
	}
	return facts
}

// traceAssignments starts the dispatch span of each assignment and puts its traceparent in
// the assignment, in place of the execution's root. It returns the spans, to end once the
// assignments are sent.
func (o *observer) traceAssignments(execs []store.Execution, facts []assignFacts, asgs []*agentv1.Assignment) []trace.Span {
	spans := make([]trace.Span, len(execs))
	for i := range execs {
		span, tp := o.startDispatch(&execs[i], facts[i])
		spans[i] = span
		if tp != "" {
			if asgs[i].TraceContext == nil {
				asgs[i].TraceContext = map[string]string{}
			}
			asgs[i].TraceContext[TraceContextKey] = tp
		}
	}
	return spans
}

// grpcClientHandler traces the replica's sessions with agents: a client span per Connect
// stream, in a trace of its own (executions' traces are carried in the assignments).
func (o *observer) grpcClientHandler() stats.Handler {
	return telemetry.GRPCClientHandler(o.d.cfg.TracerProvider)
}
