package agent_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/agent"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

// metricValue returns the value of the series of name with labels: a counter's or gauge's
// value, a histogram's sample count. It fails the test when there is no such series.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// eventually waits until the series reaches want.
func eventually(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	require.Eventually(t, func() bool { return metricValue(t, g, name, labels) == want }, waitFor, tick,
		"%s%v never reached %v (last %v)", name, labels, want, metricValue(t, g, name, labels))
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Code, string(body)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := setup(t, func(c *agent.Config) {
		c.Registerer = reg
		c.Capacity = 2
	})
	h := agent.HTTPHandler(e.agent, reg)
	e.waitHealthy()
	require.EqualValues(t, 2, metricValue(t, reg, "tock_agent_capacity", nil))
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_service_connected", nil))
	require.EqualValues(t, 0, metricValue(t, reg, "tock_agent_session_live", nil))
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_info", map[string]string{"version": agent.Version}))

	r, _ := e.connect(1)
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_session_connects_total", nil))
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_session_live", nil))

	r.assign(assignment("m1", "echo", 1), assignment("m2", "fail", 1))
	ok, failed := r.result("m1"), r.result("m2")
	require.EqualValues(t, 2, metricValue(t, reg, "tock_agent_executions_started_total", nil))
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_executions_finished_total", map[string]string{"outcome": "succeeded"}))
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_executions_finished_total", map[string]string{"outcome": "failed"}))
	require.EqualValues(t, 0, metricValue(t, reg, "tock_agent_executions_finished_total", map[string]string{"outcome": "timed_out"}))
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_handler_duration_seconds",
		map[string]string{"handler": "echo", "outcome": "succeeded"}))
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_handler_duration_seconds",
		map[string]string{"handler": "fail", "outcome": "failed"}))
	require.EqualValues(t, 2, metricValue(t, reg, "tock_agent_results_unacknowledged", nil))

	// A new session re-sends what the old one left unacknowledged.
	r.cancel()
	eventually(t, reg, "tock_agent_session_disconnects_total", nil, 1)
	require.EqualValues(t, 0, metricValue(t, reg, "tock_agent_session_live", nil))
	r, _ = e.connect(2)
	r.result("m1")
	r.result("m2")
	require.EqualValues(t, 2, metricValue(t, reg, "tock_agent_results_resent_total", nil))
	r.ack(ok, failed)
	eventually(t, reg, "tock_agent_results_unacknowledged", nil, 0)

	// Capacity: two run, the third is released.
	r.assign(assignment("b1", "block", 1), assignment("b2", "block", 1), assignment("b3", "block", 1))
	r.released()
	require.EqualValues(t, 2, metricValue(t, reg, "tock_agent_executions_running", nil))
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_assignments_released_total", map[string]string{"reason": "at_capacity"}))
	require.EqualValues(t, 0, metricValue(t, reg, "tock_agent_assignments_released_total", map[string]string{"reason": "draining"}))

	// The HTTP handler serves the same registry, and /healthz.
	code, body := get(t, h, "/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "tock_agent_executions_running 2")
	require.Contains(t, body, `tock_agent_executions_finished_total{outcome="succeeded"} 1`)
	code, body = get(t, h, "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "ok\nsession: replica replica-a, epoch 2\nlocal service: reachable\n")

	// Draining shows in the gauge and in /healthz.
	<-e.blocked
	<-e.blocked
	e.stopAgent()
	eventually(t, reg, "tock_agent_draining", nil, 1)
	code, body = get(t, h, "/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "draining")
	e.releaseBlocked()
	r.ack(r.result("b1"), r.result("b2"))
	require.NoError(t, <-e.agentServed)
	e.agentServed <- nil
	require.EqualValues(t, 3, metricValue(t, reg, "tock_agent_executions_finished_total", map[string]string{"outcome": "succeeded"}))
}

func TestMetricsServiceDisconnects(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := setup(t, func(c *agent.Config) { c.Registerer = reg })
	e.waitHealthy()
	e.app.down()
	eventually(t, reg, "tock_agent_service_connected", nil, 0)
	require.EqualValues(t, 1, metricValue(t, reg, "tock_agent_service_disconnects_total", nil))
	e.app.up()
	eventually(t, reg, "tock_agent_service_connected", nil, 1)
}

func TestMetricsClash(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	_, err := agent.New(agent.Config{Registerer: reg})
	require.NoError(t, err)
	_, err = agent.New(agent.Config{Registerer: reg})
	require.ErrorContains(t, err, "register agent metrics")
}

func TestNoMetricsWithoutRegisterer(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	r.assign(assignment("n1", "echo", 1))
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, r.result("n1").GetOutcome())
}
