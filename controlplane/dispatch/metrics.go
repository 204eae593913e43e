package dispatch

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's Prometheus collectors.
type metrics struct {
	executions      *prometheus.CounterVec
	rejectedResults prometheus.Counter
	leaseExpiries   prometheus.Counter
	scheduleToStart prometheus.Histogram
	assignments     prometheus.Counter
	claimBatch      prometheus.Histogram
	replicas        prometheus.Gauge
	agentsOwned     prometheus.Gauge
	clockOffset     prometheus.Gauge
	loadAtAssign    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tock_executions_finished_total",
			Help: "Executions that reached a final state reported by an agent, by state.",
		}, []string{"state"}),
		rejectedResults: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_results_rejected_total",
			Help: "Results rejected because their lease epoch was stale or the execution had ended.",
		}),
		leaseExpiries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_lease_expiries_total",
			Help: "Executions marked lost because their agent's lease ran out.",
		}),
		scheduleToStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tock_schedule_to_assign_seconds",
			Help:    "Time from an execution's not-before time to its assignment to an agent.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}),
		assignments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_assignments_total",
			Help: "Executions assigned to agents.",
		}),
		claimBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tock_claim_batch_size",
			Help:    "Executions assigned per claim transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tock_replicas_live",
			Help: "Live control-plane replicas in this replica's last view of the registry.",
		}),
		agentsOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tock_agents_owned",
			Help: "Agents this replica owns and holds a session with.",
		}),
		clockOffset: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tock_database_clock_offset_seconds",
			Help: "The database clock minus this replica's clock, as last measured.",
		}),
		loadAtAssign: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tock_assignment_agent_load_ratio",
			Help: "An agent's executions in flight over its capacity right after each assignment to it; " +
				"every observation is at most 1 unless an agent was given more than its capacity.",
			Buckets: []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.executions, m.rejectedResults, m.leaseExpiries, m.scheduleToStart,
			m.assignments, m.claimBatch, m.replicas, m.agentsOwned, m.clockOffset, m.loadAtAssign)
	}
	return m
}
