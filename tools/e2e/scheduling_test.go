package e2e_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// schedExecution is an execution with the fields the scheduling tests look at.
type schedExecution struct {
	execution
	Trigger              string   `json:"trigger"`
	UpstreamExecutionIDs []string `json:"upstreamExecutionIds"`
}

func (c *cluster) schedExecutions(job string) []schedExecution {
	c.t.Helper()
	var out struct {
		Executions []schedExecution `json:"executions"`
	}
	code, body := c.call(http.MethodGet, "/v1/executions?job="+job+"&pageSize=1000", nil, &out)
	require.Equal(c.t, http.StatusOK, code, body)
	return out.Executions
}

// byAttempt indexes executions by attempt.
func byAttempt(execs []schedExecution) map[int]schedExecution {
	out := make(map[int]schedExecution, len(execs))
	for _, e := range execs {
		out[e.Attempt] = e
	}
	return out
}

// TestSleepTimesOutIsCancelledAndRetried runs the sleep handler past its deadlines through
// real processes: past its start-to-close timeout the handler's context ends, the attempt is
// TIMED_OUT and retried under the job's policy; past the schedule-to-close timeout the
// control plane cancels the running handler through its agent, and the fire ends TIMED_OUT
// without a retry.
func TestSleepTimesOutIsCancelledAndRetried(t *testing.T) {
	t.Parallel()
	c := startCluster(t)

	// Start-to-close: 1s per attempt for a 20s sleep, two attempts.
	code, body := c.call(http.MethodPost, "/v1/jobs", map[string]any{
		"name":        "nap",
		"handler":     "sleep",
		"payload":     map[string]any{"ms": 20000},
		"timeout":     "1s",
		"retryPolicy": map[string]any{"maxAttempts": 2, "initialBackoff": "0.2s"},
	}, nil)
	require.Equal(t, http.StatusOK, code, body)
	var first execution
	code, body = c.call(http.MethodPost, "/v1/jobs/nap:trigger", map[string]any{}, &first)
	require.Equal(t, http.StatusOK, code, body)
	c.eventually(30*time.Second, "both attempts of nap timed out", func() bool {
		return countState(c.executions("nap"), "TIMED_OUT") == 2
	})
	attempts := byAttempt(c.schedExecutions("nap"))
	require.Len(t, attempts, 2, "max attempts is 2")
	require.Equal(t, first.ID, attempts[1].ID)
	require.Equal(t, attempts[1].ID, attempts[2].RetryOf)
	require.Equal(t, "TRIGGER_KIND_RETRY", attempts[2].Trigger)
	for n, e := range attempts {
		require.True(t, strings.HasSuffix(e.State, "TIMED_OUT"), "attempt %d: %s", n, e.State)
		require.NotNil(t, e.StartTime)
		require.NotNil(t, e.FinishTime)
		ran := e.FinishTime.Sub(*e.StartTime)
		require.Less(t, ran, 10*time.Second, "attempt %d: the handler stopped at its deadline, not after its 20s sleep", n)
	}
	require.False(t, attempts[2].CreateTime.Before(*attempts[1].FinishTime), "the retry follows the first attempt")

	// Schedule-to-close: 2s for the whole fire, retries included, of a 30s sleep whose
	// attempts may run a minute.
	code, body = c.call(http.MethodPost, "/v1/jobs", map[string]any{
		"name":                   "overall",
		"handler":                "sleep",
		"payload":                map[string]any{"ms": 30000},
		"timeout":                "60s",
		"scheduleToCloseTimeout": "2s",
		"retryPolicy":            map[string]any{"maxAttempts": 3, "initialBackoff": "0.1s"},
	}, nil)
	require.Equal(t, http.StatusOK, code, body)
	var triggered execution
	code, body = c.call(http.MethodPost, "/v1/jobs/overall:trigger", map[string]any{}, &triggered)
	require.Equal(t, http.StatusOK, code, body)
	c.eventually(30*time.Second, "overall timed out", func() bool {
		return countState(c.executions("overall"), "TIMED_OUT") == 1
	})
	execs := c.schedExecutions("overall")
	require.Len(t, execs, 1, "a schedule-to-close timeout is not retried")
	e := execs[0]
	require.NotNil(t, e.Error)
	require.Equal(t, "ScheduleToCloseTimeout", e.Error.Kind)
	require.NotNil(t, e.StartTime, "it was running when its fire timed out")
	require.Less(t, e.FinishTime.Sub(e.NominalTime), 15*time.Second, "the handler was cancelled, not left to sleep 30s")
}

// TestDependencyChain runs extract → transform → load through real processes: each runs
// when the one before succeeds, for the same nominal time, and names its upstream execution.
// A cycle is refused.
func TestDependencyChain(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	for _, job := range []map[string]any{
		{"name": "extract", "handler": "echo", "payload": map[string]any{"rows": 3}},
		{"name": "transform", "handler": "echo", "dependsOn": []string{"extract"}, "payload": map[string]any{"step": "transform"}},
		{"name": "load", "handler": "echo", "dependsOn": []string{"transform"}},
	} {
		code, body := c.call(http.MethodPost, "/v1/jobs", job, nil)
		require.Equal(t, http.StatusOK, code, body)
	}
	var first execution
	code, body := c.call(http.MethodPost, "/v1/jobs/extract:trigger", map[string]any{}, &first)
	require.Equal(t, http.StatusOK, code, body)
	c.eventually(30*time.Second, "load succeeded", func() bool {
		return countState(c.executions("load"), "SUCCEEDED") == 1
	})
	extract := c.schedExecutions("extract")
	transform := c.schedExecutions("transform")
	load := c.schedExecutions("load")
	require.Len(t, extract, 1)
	require.Len(t, transform, 1)
	require.Len(t, load, 1)
	require.True(t, transform[0].NominalTime.Equal(first.NominalTime), "the chain runs for the upstream's nominal time")
	require.True(t, load[0].NominalTime.Equal(first.NominalTime))
	require.Equal(t, "TRIGGER_KIND_DEPENDENCY", transform[0].Trigger)
	require.Equal(t, []string{extract[0].ID}, transform[0].UpstreamExecutionIDs)
	require.Equal(t, []string{transform[0].ID}, load[0].UpstreamExecutionIDs)
	require.JSONEq(t, `{"step":"transform"}`, string(transform[0].Result))

	var fires struct {
		Fires []struct {
			Outcome     string `json:"outcome"`
			ExecutionID string `json:"executionId"`
		} `json:"fires"`
	}
	code, body = c.call(http.MethodGet, "/v1/jobs/load/fires", nil, &fires)
	require.Equal(t, http.StatusOK, code, body)
	require.Len(t, fires.Fires, 1)
	require.Equal(t, "FIRE_OUTCOME_DISPATCHED", fires.Fires[0].Outcome)
	require.Equal(t, load[0].ID, fires.Fires[0].ExecutionID)

	code, body = c.call(http.MethodPatch, "/v1/jobs/extract?updateMask=dependsOn", map[string]any{"dependsOn": []string{"load"}}, nil)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "extract → load → transform → extract")
}

// TestPreviewAndBackfillCLI uses "tock job next" and "tock job backfill" against tockd.
func TestPreviewAndBackfillCLI(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	out, err := c.cli("job", "create", "hourly", "--handler", "echo", "--cron", "0 * * * *",
		"--timezone", "Australia/Lord_Howe", "--overlap", "allow-n", "--max-concurrent", "2")
	require.NoError(t, err, out)
	out, err = c.cli("job", "next", "hourly", "-n", "3", "-o", "json")
	require.NoError(t, err)
	var preview struct {
		FireTimes []struct {
			Time      time.Time `json:"time"`
			LocalTime string    `json:"localTime"`
		} `json:"fireTimes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &preview), out)
	require.Len(t, preview.FireTimes, 3)
	for _, ft := range preview.FireTimes {
		local, err := time.Parse(time.RFC3339, ft.LocalTime)
		require.NoError(t, err)
		require.True(t, local.Equal(ft.Time))
		require.Zero(t, local.Minute(), "on the hour, local time")
		require.True(t, strings.HasSuffix(ft.LocalTime, "+11:00") || strings.HasSuffix(ft.LocalTime, "+10:30"), ft.LocalTime)
	}

	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	start := end.Add(-3 * time.Hour)
	out, err = c.cli("job", "backfill", "hourly", "--start", start.Format(time.RFC3339), "--end", end.Format(time.RFC3339))
	require.NoError(t, err, out)
	require.Equal(t, 2, strings.Count(out, "DISPATCHED"), out)
	require.Equal(t, 1, strings.Count(out, "SKIPPED_OVERLAP"), "allow at most 2 at once:\n%s", out)
	c.eventually(30*time.Second, "the backfilled executions succeeded", func() bool {
		return countState(c.executions("hourly"), "SUCCEEDED") >= 2
	})
}
