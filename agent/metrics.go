package agent

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

// durationBuckets are the bounds, in seconds, of the handler duration histogram: from 5ms
// (a trivial handler over loopback) to an hour (a batch job).
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// outcomes are the label values of finished executions, so every series exists from the start.
var outcomes = []agentv1.Outcome{
	agentv1.Outcome_OUTCOME_SUCCEEDED,
	agentv1.Outcome_OUTCOME_FAILED,
	agentv1.Outcome_OUTCOME_TIMED_OUT,
	agentv1.Outcome_OUTCOME_CANCELLED,
}

// releaseReasons are the label values of released assignments.
var releaseReasons = []string{
	ReasonDraining, ReasonServiceUnavailable, ReasonUnknownHandler, ReasonAtCapacity,
	ReasonResultBufferFull, ReasonPreviousLease,
}

// metrics are the agent's Prometheus collectors. Counters and the histogram are updated where
// things happen; the gauges read the agent's state when they are scraped. Labels carry
// outcomes, reasons and handler names, never ids.
type metrics struct {
	started            prometheus.Counter
	finished           *prometheus.CounterVec // by outcome
	released           *prometheus.CounterVec // by reason
	resent             prometheus.Counter
	sessionConnects    prometheus.Counter
	sessionDisconnects prometheus.Counter
	serviceDisconnects prometheus.Counter
	registrationErrors prometheus.Counter
	duration           *prometheus.HistogramVec // by handler and outcome

	gauges []prometheus.Collector
}

// newMetrics makes the agent's collectors and registers them with reg when reg is not nil.
func newMetrics(a *Agent, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_agent_executions_started_total",
			Help: "Executions the agent started on the local service.",
		}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tock_agent_executions_finished_total",
			Help: "Executions that ended on the agent, by outcome (succeeded, failed, timed_out, cancelled).",
		}, []string{"outcome"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tock_agent_assignments_released_total",
			Help: "Assignments the agent handed back without running them, by reason.",
		}, []string{"reason"}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_agent_results_resent_total",
			Help: "Unacknowledged results sent again at the start of a new session.",
		}),
		sessionConnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_agent_session_connects_total",
			Help: "Sessions a control-plane replica opened with the agent.",
		}),
		sessionDisconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_agent_session_disconnects_total",
			Help: "Sessions with a control-plane replica that ended, for any reason.",
		}),
		serviceDisconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_agent_service_disconnects_total",
			Help: "Times the stream to the local service broke.",
		}),
		registrationErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_agent_registration_errors_total",
			Help: "Failed attempts to register with, or refresh the registration in, the registry.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tock_agent_handler_duration_seconds",
			Help:    "Time from sending an execution to the local service to its result, by handler and outcome.",
			Buckets: durationBuckets,
		}, []string{"handler", "outcome"}),
	}
	for _, o := range outcomes {
		m.finished.WithLabelValues(outcomeLabel(o))
	}
	for _, r := range releaseReasons {
		m.released.WithLabelValues(reasonLabel(r))
	}

	gauge := func(name, help string, f func() float64) {
		m.gauges = append(m.gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	locked := func(f func() bool) func() float64 {
		return func() float64 {
			a.mu.Lock()
			defer a.mu.Unlock()
			return boolFloat(f())
		}
	}
	gauge("tock_agent_executions_running", "Executions the agent is running now.", func() float64 {
		return float64(a.Running())
	})
	gauge("tock_agent_capacity", "The most executions the agent runs at once.", func() float64 {
		return float64(a.cfg.Capacity)
	})
	gauge("tock_agent_results_unacknowledged", "Results buffered until the control plane acknowledges them.",
		func() float64 { return float64(a.PendingResults()) })
	gauge("tock_agent_session_live", "1 while a control-plane replica holds a session with the agent.",
		locked(func() bool { return a.session != nil }))
	gauge("tock_agent_service_connected", "1 while the agent has a working stream to the local service.",
		locked(func() bool { return a.svc != nil }))
	gauge("tock_agent_draining", "1 once the agent is draining.", locked(func() bool { return a.draining }))
	m.gauges = append(m.gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "tock_agent_info",
		Help:        "Always 1; the version label is the agent's version.",
		ConstLabels: prometheus.Labels{"version": Version},
	}, func() float64 { return 1 }))

	if reg != nil {
		collectors := append([]prometheus.Collector{m.started, m.finished, m.released, m.resent,
			m.sessionConnects, m.sessionDisconnects, m.serviceDisconnects, m.registrationErrors,
			m.duration}, m.gauges...)
		for _, c := range collectors {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register agent metrics: %w", err)
			}
		}
	}
	return m, nil
}

// executionFinished records an execution's end.
func (m *metrics) executionFinished(handler string, r *agentv1.Result, seconds float64) {
	o := outcomeLabel(r.GetOutcome())
	m.finished.WithLabelValues(o).Inc()
	m.duration.WithLabelValues(handler, o).Observe(seconds)
}

// outcomeLabel turns OUTCOME_TIMED_OUT into "timed_out".
func outcomeLabel(o agentv1.Outcome) string {
	return strings.ToLower(strings.TrimPrefix(o.String(), "OUTCOME_"))
}

// reasonLabel turns a release reason such as "at capacity" into "at_capacity".
func reasonLabel(reason string) string {
	return strings.ReplaceAll(reason, " ", "_")
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// httpHandler serves /metrics from g and /healthz: 200 while the agent serves, 503 once it
// drains, with the state of the session and of the local service in the body either way.
func (a *Agent) httpHandler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		draining, svcUp := a.draining, a.svc != nil
		session := "none"
		if a.session != nil {
			session = fmt.Sprintf("replica %s, epoch %d", a.session.replicaID, a.session.epoch)
		}
		a.mu.Unlock()
		service := "reachable"
		if !svcUp {
			service = "unreachable"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if draining {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "draining")
		} else {
			fmt.Fprintln(w, "ok")
		}
		fmt.Fprintf(w, "session: %s\nlocal service: %s\n", session, service)
	})
	return mux
}
