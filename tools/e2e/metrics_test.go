package e2e_test

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMetricsMove scrapes tockd's /metrics (tockd dev: its development agent shares the
// registry) before and after executions run, and checks that the counters, histograms and
// gauges move as they should.
func TestMetricsMove(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	url := "http://" + c.httpAddr + "/metrics"
	c.eventually(30*time.Second, "the development agent is ready", func() bool {
		return scrape(t, url).value(`tock_agents{health="ready"}`) == 1
	})
	before := scrape(t, url)
	require.Equal(t, 1.0, before.sum(`tock_build_info`), "build info")
	require.Equal(t, 0.0, before.value(`tock_store_tx_retries_total`), "SQLite never retries, but the counter is there")
	for _, name := range []string{
		`tock_fires_total{outcome="dispatched"}`,
		`tock_executions_finished_total{state="succeeded"}`,
		`tock_executions_finished_total{state="failed"}`,
		`tock_lease_expiries_total`,
		`tock_results_rejected_total`,
		`tock_executions_pending`,
		`tock_executions_pending_oldest_age_seconds`,
		`tock_execution_reports_dropped_total{kind="log",reason="queue_full"}`,
	} {
		before.value(name) // fails the test when the series is missing
	}

	c.createJob(t, map[string]any{"name": "tick", "handler": "echo", "schedule": map[string]any{"cron": "* * * * * *"}})
	c.createJob(t, map[string]any{"name": "nap", "handler": "sleep", "payload": map[string]any{"ms": 10}})
	c.createJob(t, map[string]any{"name": "flaky", "handler": "fail", "retryPolicy": map[string]any{"maxAttempts": 1}})
	nap := c.trigger(t, "nap", nil)
	flaky := c.trigger(t, "flaky", nil)
	require.Equal(t, "EXECUTION_STATE_SUCCEEDED", c.waitFinal(t, nap.ID).State)
	require.Equal(t, "EXECUTION_STATE_FAILED", c.waitFinal(t, flaky.ID).State)
	c.eventually(30*time.Second, "tick fired and succeeded", func() bool {
		return countState(c.executions("tick"), "SUCCEEDED") > 0
	})

	var after metrics
	c.eventually(30*time.Second, "the counters moved", func() bool {
		after = scrape(t, url)
		return after.value(`tock_execution_log_lines_total`) > before.value(`tock_execution_log_lines_total`)
	})
	grew := func(name string) {
		t.Helper()
		require.Greater(t, after.value(name), before.value(name), name)
	}
	grew(`tock_fires_total{outcome="dispatched"}`)
	grew(`tock_executions_finished_total{state="succeeded"}`)
	grew(`tock_executions_finished_total{state="failed"}`)
	grew(`tock_assignments_total`)
	grew(`tock_fire_lateness_seconds_count`)
	grew(`tock_schedule_to_assign_seconds_count`)
	grew(`tock_schedule_to_start_seconds_count`)
	grew(`tock_execution_run_seconds_count{state="succeeded"}`)
	grew(`tock_execution_run_seconds_count{state="failed"}`)
	grew(`tock_execution_progress_updates_total`)
	grew(`tock_agent_executions_finished_total{outcome="succeeded"}`)
	require.Equal(t, 1.0, after.value(`tock_agents{health="ready"}`))
	require.GreaterOrEqual(t, after.value(`tock_agents_capacity{service="default"}`), 1.0)
	after.value(`tock_agents_in_flight{service="default"}`)
	for name := range after.series {
		require.True(t, strings.HasPrefix(name, "tock_") || strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") ||
			strings.HasPrefix(name, "promhttp_"), "metric %s has no tock_ prefix", name)
		require.NotContains(t, name, "execution_id", "no ids in labels")
	}
}

// metrics is a scrape: each series ("name{label="value",…}", labels as exposed) with its value.
type metrics struct {
	t      *testing.T
	series map[string]float64
}

// value returns a series' value, failing the test when the scrape does not have it.
func (m metrics) value(series string) float64 {
	m.t.Helper()
	v, ok := m.series[series]
	require.True(m.t, ok, "no series %s in the scrape", series)
	return v
}

// sum returns the sum of the series of metric name, whatever their labels.
func (m metrics) sum(name string) float64 {
	m.t.Helper()
	total, found := 0.0, false
	for s, v := range m.series {
		if s == name || strings.HasPrefix(s, name+"{") {
			total, found = total+v, true
		}
	}
	require.True(m.t, found, "no metric %s in the scrape", name)
	return total
}

// scrape reads a Prometheus text exposition.
func scrape(t *testing.T, url string) metrics {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return parseMetrics(t, resp.Body)
}

func parseMetrics(t *testing.T, r io.Reader) metrics {
	t.Helper()
	m := metrics{t: t, series: map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, "malformed line %q", line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, "line %q", line)
		m.series[line[:i]] = v
	}
	require.NoError(t, sc.Err())
	return m
}
