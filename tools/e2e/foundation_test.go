package e2e_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCronJobRunsRetriesAndSurvivesRestart is the foundation's vertical slice: a job with a
// seconds-level cron runs the echo handler through the development agent and records its
// results; the fail handler is retried under the default policy; jobs survive a restart.
func TestCronJobRunsRetriesAndSurvivesRestart(t *testing.T) {
	t.Parallel()
	c := startCluster(t)

	// A job firing every second, with a JSON payload the echo handler returns.
	var job map[string]any
	code, body := c.call(http.MethodPost, "/v1/jobs", map[string]any{
		"name":     "tick",
		"handler":  "echo",
		"schedule": map[string]any{"cron": "* * * * * *", "timezone": "UTC"},
		"payload":  map[string]any{"hello": "tock", "n": 1},
		"timeout":  "10s",
	}, &job)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "tick", job["name"])
	require.NotEmpty(t, job["nextFireTime"])

	c.eventually(20*time.Second, "two tick executions succeeded", func() bool {
		return countState(c.executions("tick"), "SUCCEEDED") >= 2
	})
	for _, e := range c.executions("tick") {
		if !strings.HasSuffix(e.State, "SUCCEEDED") {
			continue
		}
		require.JSONEq(t, `{"hello":"tock","n":1}`, string(e.Result))
		require.Equal(t, 1, e.Attempt)
		require.Equal(t, "dev-agent", e.Agent)
		require.Zero(t, e.NominalTime.Nanosecond(), "cron nominal times are whole seconds")
	}

	// The fail handler returns a retryable error: three attempts under the default policy,
	// each a new execution that names the one it retries.
	var boom map[string]any
	code, body = c.call(http.MethodPost, "/v1/jobs", map[string]any{
		"name":        "boom",
		"handler":     "fail",
		"retryPolicy": map[string]any{"maxAttempts": 3, "initialBackoff": "0.1s"},
	}, &boom)
	require.Equal(t, http.StatusOK, code, body)
	var triggered execution
	code, body = c.call(http.MethodPost, "/v1/jobs/boom:trigger", map[string]any{}, &triggered)
	require.Equal(t, http.StatusOK, code, body)
	require.True(t, strings.HasSuffix(triggered.State, "PENDING"), triggered.State)
	c.eventually(20*time.Second, "three failed attempts of boom", func() bool {
		return countState(c.executions("boom"), "FAILED") == 3
	})
	attempts := map[int]execution{}
	for _, e := range c.executions("boom") {
		attempts[e.Attempt] = e
		require.NotNil(t, e.Error)
		require.Equal(t, "Deliberate", e.Error.Kind)
		require.True(t, e.Error.Retryable)
	}
	require.Len(t, attempts, 3)
	require.Equal(t, triggered.ID, attempts[1].ID)
	require.Equal(t, attempts[1].ID, attempts[2].RetryOf)
	require.Equal(t, attempts[2].ID, attempts[3].RetryOf)

	// The CLI sees the same executions.
	out, err := c.cli("exec", "list", "--job", "tick")
	require.NoError(t, err)
	require.Contains(t, out, "SUCCEEDED")
	out, err = c.cli("exec", "list", "--job", "tick", "-o", "json")
	require.NoError(t, err)
	var listed struct {
		Executions []execution `json:"executions"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.NotEmpty(t, listed.Executions)

	// Restart: the jobs are still there and tick keeps firing.
	before := countState(c.executions("tick"), "SUCCEEDED")
	c.tockd.stop()
	c.startTockd()
	code, body = c.call(http.MethodGet, "/v1/jobs/tick", nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	code, body = c.call(http.MethodGet, "/v1/jobs/boom", nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	c.eventually(20*time.Second, "tick runs again after the restart", func() bool {
		return countState(c.executions("tick"), "SUCCEEDED") >= before+2
	})

	// Every fire of tick is recorded once.
	var fires struct {
		Fires []struct {
			NominalTime time.Time `json:"nominalTime"`
			Outcome     string    `json:"outcome"`
		} `json:"fires"`
	}
	code, body = c.call(http.MethodGet, "/v1/jobs/tick/fires?pageSize=1000", nil, &fires)
	require.Equal(t, http.StatusOK, code, body)
	seen := map[time.Time]bool{}
	for _, f := range fires.Fires {
		require.False(t, seen[f.NominalTime], "fire %s recorded twice", f.NominalTime)
		seen[f.NominalTime] = true
	}
}

// TestBadInput checks that mistakes get a status and a message naming the field.
func TestBadInput(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	code, body := c.call(http.MethodPost, "/v1/jobs", map[string]any{"name": "ok", "handler": "echo"}, nil)
	require.Equal(t, http.StatusOK, code, body)

	tests := []struct {
		name     string
		method   string
		path     string
		body     any
		wantCode int
		wantIn   string
	}{
		{"invalid cron", http.MethodPost, "/v1/jobs", map[string]any{"name": "a", "handler": "echo", "schedule": map[string]any{"cron": "61 * * * *"}}, http.StatusBadRequest, "job.schedule.cron"},
		{"never-firing cron", http.MethodPost, "/v1/jobs", map[string]any{"name": "a", "handler": "echo", "schedule": map[string]any{"cron": "0 0 30 2 *"}}, http.StatusBadRequest, "never fires"},
		{"unknown zone", http.MethodPost, "/v1/jobs", map[string]any{"name": "a", "handler": "echo", "schedule": map[string]any{"cron": "* * * * *", "timezone": "Mars/Base"}}, http.StatusBadRequest, "job.schedule.timezone"},
		{"duplicate", http.MethodPost, "/v1/jobs", map[string]any{"name": "ok", "handler": "echo"}, http.StatusConflict, "already exists"},
		{"not a DNS label", http.MethodPost, "/v1/jobs", map[string]any{"name": "Not_A_Label", "handler": "echo"}, http.StatusBadRequest, "job.name"},
		{"no handler", http.MethodPost, "/v1/jobs", map[string]any{"name": "a"}, http.StatusBadRequest, "job.handler"},
		{"oversized payload", http.MethodPost, "/v1/jobs", map[string]any{"name": "a", "handler": "echo", "payload": strings.Repeat("x", 1<<20+1)}, http.StatusBadRequest, "job.payload"},
		{"malformed JSON", http.MethodPost, "/v1/jobs", `{"name": "a", "handler":`, http.StatusBadRequest, ""},
		{"bad timeout", http.MethodPost, "/v1/jobs", map[string]any{"name": "a", "handler": "echo", "timeout": "0.5s"}, http.StatusBadRequest, "job.timeout"},
		{"missing job", http.MethodGet, "/v1/jobs/nope", nil, http.StatusNotFound, `not found`},
		{"trigger missing job", http.MethodPost, "/v1/jobs/nope:trigger", map[string]any{}, http.StatusNotFound, "not found"},
		{"bad execution id", http.MethodGet, "/v1/executions/xyz", nil, http.StatusBadRequest, "id"},
		{"bad page token", http.MethodGet, "/v1/jobs?pageToken=%25%25", nil, http.StatusBadRequest, "page_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := c.call(tt.method, tt.path, tt.body, nil)
			require.Equal(t, tt.wantCode, code, body)
			require.Contains(t, body, tt.wantIn)
		})
	}
	// The server is still healthy after all of that.
	code, _ = c.call(http.MethodGet, "/healthz", nil, nil)
	require.Equal(t, http.StatusOK, code)
}
