package e2e_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSDKParity runs one scenario against the Go example service (examples/go) and the Python
// one (examples/python), which serve the same echo, sleep and fail handlers: a job runs and
// echoes its payload, a failing job is retried until its attempts run out, a job past its
// timeout is timed out and retried, and a cancelled execution ends CANCELLED and is not
// retried. Both languages must give the same answers through the REST API.
func TestSDKParity(t *testing.T) {
	t.Parallel()
	for _, lang := range []string{"go", "python"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			var c *cluster
			if lang == "go" {
				c = startCluster(t)
			} else {
				c = startPythonCluster(t)
			}
			runParityScenario(t, c, lang)
		})
	}
}

// runParityScenario runs the scenario's steps as parallel subtests on one cluster.
func runParityScenario(t *testing.T, c *cluster, lang string) {
	t.Run("echo", func(t *testing.T) {
		t.Parallel()
		c.createJob(t, map[string]any{"name": "echo", "handler": "echo", "payload": map[string]any{"from": lang, "n": 1}})
		first := c.trigger(t, "echo", nil)
		second := c.trigger(t, "echo", map[string]any{"payload": []any{"override", lang}})
		done := c.waitFinal(t, first.ID)
		require.Equal(t, "EXECUTION_STATE_SUCCEEDED", done.State, done.Error)
		require.JSONEq(t, fmt.Sprintf(`{"from":%q,"n":1}`, lang), string(done.Result))
		require.Equal(t, 1, done.Attempt)
		done = c.waitFinal(t, second.ID)
		require.Equal(t, "EXECUTION_STATE_SUCCEEDED", done.State, done.Error)
		require.JSONEq(t, fmt.Sprintf(`["override",%q]`, lang), string(done.Result))
	})

	t.Run("retry", func(t *testing.T) {
		t.Parallel()
		c.createJob(t, map[string]any{
			"name":        "flaky",
			"handler":     "fail",
			"retryPolicy": map[string]any{"maxAttempts": 3, "initialBackoff": "0.1s"},
		})
		first := c.trigger(t, "flaky", nil)
		c.eventually(30*time.Second, "three failed attempts of flaky", func() bool {
			return countState(c.executions("flaky"), "FAILED") == 3
		})
		byAttempt := map[int]execution{}
		for _, e := range c.executions("flaky") {
			require.Equal(t, "EXECUTION_STATE_FAILED", e.State)
			require.NotNil(t, e.Error)
			require.Equal(t, "Deliberate", e.Error.Kind)
			require.Equal(t, "fail handler always fails", e.Error.Message)
			require.True(t, e.Error.Retryable)
			byAttempt[e.Attempt] = e
		}
		require.Len(t, byAttempt, 3)
		require.Equal(t, first.ID, byAttempt[1].ID)
		require.Empty(t, byAttempt[1].RetryOf)
		require.Equal(t, byAttempt[1].ID, byAttempt[2].RetryOf)
		require.Equal(t, byAttempt[2].ID, byAttempt[3].RetryOf)
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		c.createJob(t, map[string]any{
			"name":        "nap",
			"handler":     "sleep",
			"payload":     map[string]any{"ms": 60000},
			"timeout":     "1s",
			"retryPolicy": map[string]any{"maxAttempts": 2, "initialBackoff": "0.1s"},
		})
		first := c.trigger(t, "nap", nil)
		c.eventually(30*time.Second, "two timed-out attempts of nap", func() bool {
			return countState(c.executions("nap"), "TIMED_OUT") == 2
		})
		byAttempt := map[int]execution{}
		for _, e := range c.executions("nap") {
			require.Equal(t, "EXECUTION_STATE_TIMED_OUT", e.State)
			require.NotNil(t, e.Error)
			require.Equal(t, "DeadlineExceeded", e.Error.Kind)
			require.True(t, e.Error.Retryable)
			byAttempt[e.Attempt] = e
		}
		require.Len(t, byAttempt, 2)
		require.Equal(t, first.ID, byAttempt[1].ID)
		require.Equal(t, byAttempt[1].ID, byAttempt[2].RetryOf)
	})

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		c.createJob(t, map[string]any{
			"name":        "long",
			"handler":     "sleep",
			"payload":     map[string]any{"ms": 600000},
			"timeout":     "600s",
			"retryPolicy": map[string]any{"maxAttempts": 3, "initialBackoff": "0.1s"},
		})
		running := c.trigger(t, "long", nil)
		c.eventually(30*time.Second, "long is running", func() bool {
			return c.execution(t, running.ID).State == "EXECUTION_STATE_RUNNING"
		})
		code, body := c.call(http.MethodPost, "/v1/executions/"+running.ID+":cancel", map[string]any{"reason": "parity test"}, nil)
		require.Equal(t, http.StatusOK, code, body)
		done := c.waitFinal(t, running.ID)
		require.Equal(t, "EXECUTION_STATE_CANCELLED", done.State, done.Error)
		require.NotNil(t, done.Error)
		require.Equal(t, "Cancelled", done.Error.Kind)
		require.False(t, done.Error.Retryable)
		// A retry would be created in the transaction that recorded the result, so there
		// would be one by now.
		execs := c.executions("long")
		require.Len(t, execs, 1, "a cancelled execution is not retried")
	})

	t.Run("progress and logs", func(t *testing.T) {
		t.Parallel()
		c.createJob(t, map[string]any{"name": "doze", "handler": "sleep", "payload": map[string]any{"ms": 1200}})
		running := c.trigger(t, "doze", nil)
		// The handler reports progress every second: it shows while the execution runs.
		c.eventually(30*time.Second, "doze reports progress while it runs", func() bool {
			e := c.execution(t, running.ID)
			return e.State == "EXECUTION_STATE_RUNNING" && e.Progress != nil && e.Progress.Fraction < 1
		})
		done := c.waitFinal(t, running.ID)
		require.Equal(t, "EXECUTION_STATE_SUCCEEDED", done.State, done.Error)
		// Reports are written in batches, so the last may land just after the result.
		var e execution
		c.eventually(10*time.Second, "doze's last progress is recorded", func() bool {
			e = c.execution(t, running.ID)
			return e.Progress != nil && e.Progress.Message == "awake"
		})
		require.Equal(t, 1.0, e.Progress.Fraction)
		require.NotNil(t, e.Progress.UpdateTime)

		var logs executionLogs
		c.eventually(10*time.Second, "doze's log line is recorded", func() bool {
			code, body := c.call(http.MethodGet, "/v1/executions/"+running.ID+"/logs", nil, &logs)
			require.Equal(t, http.StatusOK, code, body)
			return len(logs.Logs) > 0
		})
		require.Equal(t, "sleeping for 1200 ms", logs.Logs[0].Message)
		require.Equal(t, "INFO", logs.Logs[0].Level)
		require.Equal(t, done.LeaseEpoch, logs.Logs[0].LeaseEpoch)
		require.WithinDuration(t, *done.StartTime, logs.Logs[0].Time, 5*time.Second)

		// Pages of one line follow each other with their tokens.
		code, body := c.call(http.MethodGet, "/v1/executions/"+running.ID+"/logs?pageSize=1", nil, &logs)
		require.Equal(t, http.StatusOK, code, body)
		require.Len(t, logs.Logs, 1)
		require.NotEmpty(t, logs.NextPageToken)
		code, body = c.call(http.MethodGet, "/v1/executions/"+running.ID+"/logs?pageSize=1&pageToken="+logs.NextPageToken, nil, &logs)
		require.Equal(t, http.StatusOK, code, body)
		require.Empty(t, logs.Logs, "one line in all")

		out, err := c.cli("exec", "logs", running.ID)
		require.NoError(t, err)
		require.Contains(t, out, "INFO  sleeping for 1200 ms")
		code, _ = c.call(http.MethodGet, "/v1/executions/0190f3a1-7c2b-7d4e-8f00-0000000000ff/logs", nil, nil)
		require.Equal(t, http.StatusNotFound, code)
	})
}

// createJob creates a job and fails the test unless the API accepts it.
func (c *cluster) createJob(t *testing.T, job map[string]any) {
	t.Helper()
	code, body := c.call(http.MethodPost, "/v1/jobs", job, nil)
	require.Equal(t, http.StatusOK, code, body)
}

// trigger runs a job now; body may carry a payload.
func (c *cluster) trigger(t *testing.T, job string, body map[string]any) execution {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	var e execution
	code, raw := c.call(http.MethodPost, "/v1/jobs/"+job+":trigger", body, &e)
	require.Equal(t, http.StatusOK, code, raw)
	require.NotEmpty(t, e.ID)
	return e
}

func (c *cluster) execution(t *testing.T, id string) execution {
	t.Helper()
	var e execution
	code, body := c.call(http.MethodGet, "/v1/executions/"+id, nil, &e)
	require.Equal(t, http.StatusOK, code, body)
	return e
}

// waitFinal waits until an execution reaches a final state and returns it.
func (c *cluster) waitFinal(t *testing.T, id string) execution {
	t.Helper()
	var e execution
	c.eventually(30*time.Second, "execution "+id+" finishes", func() bool {
		e = c.execution(t, id)
		switch strings.TrimPrefix(e.State, "EXECUTION_STATE_") {
		case "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "LOST":
			return true
		}
		return false
	})
	return e
}

// startPythonCluster is startCluster with the Python example service next to tockd instead of
// the Go one. It skips the test, saying why, when the repository's virtual environment (made by
// `make test-python`) or the tock package in it is missing.
func startPythonCluster(t *testing.T) *cluster {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	python := filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Skipf("skipping the Python service: %s not found; run `make test-python` to create the virtual environment", python)
	}
	if out, err := exec.Command(python, "-c", "import tock").CombinedOutput(); err != nil {
		t.Skipf("skipping the Python service: the tock package does not import in %s (%v): %s; run `make test-python`", python, err, out)
	}
	c := &cluster{
		t:        t,
		dataDir:  t.TempDir(),
		grpcAddr: freeAddr(t),
		httpAddr: freeAddr(t),
		appAddr:  freeAddr(t),
	}
	c.app = startCommand(t, "example-python", python, filepath.Join(root, "examples", "python", "service.py"), "--listen", c.appAddr)
	c.eventually(30*time.Second, "the Python example service accepts connections", func() bool {
		conn, err := net.DialTimeout("tcp", c.appAddr, time.Second)
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	})
	c.startTockd()
	return c
}

// startCommand is startProc for a program outside the directory of built binaries.
func startCommand(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.dumpLog()
		}
	})
	return p
}

// executionLogs is a page of GET /v1/executions/{id}/logs.
type executionLogs struct {
	Logs []struct {
		Time       time.Time `json:"time"`
		Level      string    `json:"level"`
		Message    string    `json:"message"`
		LeaseEpoch int64     `json:"leaseEpoch,string"`
	} `json:"logs"`
	NextPageToken string `json:"nextPageToken"`
}
