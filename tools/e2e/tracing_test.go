package e2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/tools/testenv"
)

// TestTraceAcrossProcesses runs tockd, a tock-agent and an example service as separate
// processes, each exporting spans over OTLP to a real Jaeger, and checks through Jaeger's
// query API that every execution has one trace whose spans link across the three processes:
//
//	tock.fire <job> | tock.trigger <job>       tockd
//	└─ tock.dispatch <job>                      tockd (one per attempt)
//	   └─ tock.agent.execute <handler>          tock-agent
//	      └─ tock.handler <handler>             example-go | example-python
//
// It does so for a scheduled fire, a manual trigger and a retried execution, against the Go
// and the Python example. tockd exports over OTLP/gRPC, the agent and the Python example over
// OTLP/HTTP, the Go example over gRPC. It also scrapes the agent's /metrics.
func TestTraceAcrossProcesses(t *testing.T) {
	t.Parallel()
	jaeger := testenv.Jaeger(t)
	for _, lang := range []string{"go", "python"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			c := startTracedCluster(t, jaeger, lang)
			service := "example-" + lang

			t.Run("scheduled", func(t *testing.T) {
				t.Parallel()
				c.createJob(t, map[string]any{
					"name": "tick", "handler": "echo",
					"schedule": map[string]any{"cron": "* * * * * *"},
					"payload":  map[string]any{"from": lang},
				})
				var e execution
				c.eventually(30*time.Second, "a scheduled execution of tick succeeds", func() bool {
					for _, x := range c.executions("tick") {
						if x.State == "EXECUTION_STATE_SUCCEEDED" {
							e = x
							return true
						}
					}
					return false
				})
				code, body := c.call(http.MethodPost, "/v1/jobs/tick:pause", map[string]any{}, nil)
				require.Equal(t, http.StatusOK, code, body)
				tr := waitForExecutionTrace(t, jaeger, c, e.ID, 1)
				requireExecutionTrace(t, tr, e.ID, "tock.fire tick", "tick", "echo", service)
			})

			t.Run("triggered", func(t *testing.T) {
				t.Parallel()
				c.createJob(t, map[string]any{"name": "nap", "handler": "sleep", "payload": map[string]any{"ms": 20}})
				e := c.waitFinal(t, c.trigger(t, "nap", nil).ID)
				require.Equal(t, "EXECUTION_STATE_SUCCEEDED", e.State, e.Error)
				tr := waitForExecutionTrace(t, jaeger, c, e.ID, 1)
				requireExecutionTrace(t, tr, e.ID, "tock.trigger nap", "nap", "sleep", service)
			})

			t.Run("retried", func(t *testing.T) {
				t.Parallel()
				c.createJob(t, map[string]any{
					"name": "flaky", "handler": "fail",
					"retryPolicy": map[string]any{"maxAttempts": 2, "initialBackoff": "0.1s"},
				})
				first := c.trigger(t, "flaky", nil)
				c.eventually(30*time.Second, "two failed attempts of flaky", func() bool {
					return countState(c.executions("flaky"), "FAILED") == 2
				})
				execs := c.executions("flaky")
				require.Len(t, execs, 2)
				traceID := traceIDOf(t, c, first.ID)
				for _, e := range execs {
					require.Equal(t, traceID, traceIDOf(t, c, e.ID), "a retry stays in its first attempt's trace")
				}
				tr := waitForExecutionTrace(t, jaeger, c, first.ID, 2)
				roots := tr.Roots()
				require.Len(t, roots, 1, "one root:\n%s", tr)
				require.Equal(t, "tock.trigger flaky", roots[0].OperationName)
				dispatches := tr.SpansNamed("tock.dispatch flaky")
				require.Len(t, dispatches, 2, "a dispatch span per attempt:\n%s", tr)
				for _, d := range dispatches {
					require.Equal(t, roots[0].SpanID, d.ParentSpanID(), "each attempt's dispatch is a child of the trigger")
					agents := tr.Children(d.SpanID)
					require.Len(t, agents, 1, "\n%s", tr)
					require.Equal(t, "tock.agent.execute fail", agents[0].OperationName)
					require.Equal(t, "ERROR", agents[0].TagString("otel.status_code"))
					handlers := tr.Children(agents[0].SpanID)
					require.Len(t, handlers, 1, "\n%s", tr)
					require.Equal(t, "tock.handler fail", handlers[0].OperationName)
					require.Equal(t, "Deliberate", handlers[0].TagString("tock.error.kind"))
				}
			})
		})
	}
}

// tracedCluster is tockd, a tock-agent and an example service, all exporting spans.
type tracedCluster struct {
	*cluster
	agentMetrics string // the agent's /metrics address
}

// startTracedCluster starts the three processes of one language with OTLP pointed at jaeger.
func startTracedCluster(t *testing.T, jaeger *testenv.JaegerServer, lang string) *tracedCluster {
	t.Helper()
	addrs := freeAddrs(t, 5)
	c := &tracedCluster{
		cluster:      &cluster{t: t, dataDir: t.TempDir(), grpcAddr: addrs[0], httpAddr: addrs[1], appAddr: addrs[2]},
		agentMetrics: addrs[4],
	}
	otlp := func(service, protocol string) []string {
		endpoint := "http://" + jaeger.OTLPGRPCAddr
		if protocol != "grpc" {
			endpoint = "http://" + jaeger.OTLPHTTPAddr
		}
		return []string{
			"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
			"OTEL_EXPORTER_OTLP_PROTOCOL=" + protocol,
			"OTEL_SERVICE_NAME=" + service,
			"OTEL_RESOURCE_ATTRIBUTES=tock.test.language=" + lang,
			"OTEL_BSP_SCHEDULE_DELAY=100", // export within 100ms of a span's end
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	switch lang {
	case "go":
		c.app = startEnvProc(t, "example-go", tracedGoExample(t), otlp("example-go", "grpc"), "--listen", c.appAddr)
	case "python":
		python := requirePython(t, root)
		c.app = startEnvProc(t, "example-python", python, otlp("example-python", "http/json"),
			filepath.Join(root, "tools", "e2e", "testdata", "example_otel.py"),
			filepath.Join(root, "examples", "python", "service.py"), "--listen", c.appAddr)
	}
	c.eventually(30*time.Second, "the example service accepts connections", func() bool {
		conn, err := net.DialTimeout("tcp", c.appAddr, time.Second)
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	})
	c.tockd = startEnvProc(t, "tockd", filepath.Join(binDir, "tockd"), otlp("tockd", "grpc"),
		"--data-dir", c.dataDir, "--grpc-addr", c.grpcAddr, "--http-addr", c.httpAddr,
		"--replica-id", "tockd-"+lang, "--shutdown-timeout", "10s")
	c.eventually(30*time.Second, "tockd answers /healthz", func() bool {
		return c.send(http.MethodGet, "/healthz", nil, nil) == nil
	})
	startEnvProc(t, "tock-agent", filepath.Join(binDir, "tock-agent"), otlp("tock-agent", "http/protobuf"),
		"--id", "agent-"+lang, "--listen", addrs[3], "--app-addr", c.appAddr, "--register", c.grpcAddr,
		"--metrics-addr", c.agentMetrics)
	c.eventually(30*time.Second, "the agent is connected with its handlers", func() bool {
		var out struct {
			Agents []struct {
				Connected bool     `json:"connected"`
				Handlers  []string `json:"handlers"`
			} `json:"agents"`
		}
		return c.send(http.MethodGet, "/v1/agents", nil, &out) == nil && len(out.Agents) == 1 &&
			out.Agents[0].Connected && len(out.Agents[0].Handlers) >= 3
	})
	t.Cleanup(func() {
		if !t.Failed() {
			// The agent's counters moved with the executions.
			m := scrape(t, "http://"+c.agentMetrics+"/metrics")
			require.Positive(t, m.value(`tock_agent_executions_finished_total{outcome="succeeded"}`), "agent metrics")
			require.Positive(t, m.value(`tock_agent_executions_finished_total{outcome="failed"}`), "agent metrics")
		}
	})
	return c
}

var (
	goExampleOnce sync.Once
	goExampleBin  string
	goExampleErr  error
)

// tracedGoExample builds examples/go with testdata/example_otel.go added through
// `go build -overlay`: the example as it is, plus an OTLP exporter from the OTEL_* environment.
func tracedGoExample(t *testing.T) string {
	t.Helper()
	goExampleOnce.Do(func() {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			goExampleErr = err
			return
		}
		overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{
			filepath.Join(root, "examples", "go", "zz_example_otel.go"): filepath.Join(root, "tools", "e2e", "testdata", "example_otel.go"),
		}})
		if err != nil {
			goExampleErr = err
			return
		}
		overlayFile := filepath.Join(binDir, "example-otel-overlay.json")
		if goExampleErr = os.WriteFile(overlayFile, overlay, 0o644); goExampleErr != nil {
			return
		}
		goExampleBin = filepath.Join(binDir, "example-go-traced")
		cmd := exec.Command("go", "build", "-overlay", overlayFile, "-o", goExampleBin, "./examples/go")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			goExampleErr = fmt.Errorf("build the traced Go example: %w: %s", err, out)
		}
	})
	require.NoError(t, goExampleErr)
	return goExampleBin
}

// requirePython returns the virtual environment's python, skipping t as startPythonCluster
// does when it is missing.
func requirePython(t *testing.T, root string) string {
	t.Helper()
	python := filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Skipf("skipping the Python service: %s not found; run `make test-python` to create the virtual environment", python)
	}
	if out, err := exec.Command(python, "-c", "import tock, opentelemetry.sdk").CombinedOutput(); err != nil {
		t.Skipf("skipping the Python service: tock or opentelemetry-sdk does not import in %s (%v): %s; run `make test-python`", python, err, out)
	}
	return python
}

// startEnvProc starts the program at path with env added to the test's environment.
func startEnvProc(t *testing.T, name, path string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		// A graceful stop lets the exporters send their last spans.
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.kill()
		}
		if t.Failed() {
			p.dumpLog()
		}
	})
	return p
}

var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// traceIDOf returns an execution's trace id as the API shows it.
func traceIDOf(t *testing.T, c *tracedCluster, id string) string {
	t.Helper()
	var e struct {
		TraceID string `json:"traceId"`
	}
	code, body := c.call(http.MethodGet, "/v1/executions/"+id, nil, &e)
	require.Equal(t, http.StatusOK, code, body)
	require.Regexp(t, traceIDPattern, e.TraceID, "the API returns the execution's trace id")
	return e.TraceID
}

// waitForExecutionTrace waits until Jaeger has the trace of an execution with attempts
// handler spans, and returns it.
func waitForExecutionTrace(t *testing.T, jaeger *testenv.JaegerServer, c *tracedCluster, id string, attempts int) testenv.Trace {
	t.Helper()
	return jaeger.WaitForTrace(traceIDOf(t, c, id), func(tr testenv.Trace) bool {
		count := map[string]int{}
		for _, s := range tr.Spans {
			kind, _, _ := strings.Cut(s.OperationName, " ")
			count[kind]++
		}
		return count["tock.fire"]+count["tock.trigger"] == 1 && count["tock.dispatch"] == attempts &&
			count["tock.agent.execute"] == attempts && count["tock.handler"] == attempts
	})
}

// requireExecutionTrace checks the trace of a one-attempt execution: root, dispatch, agent and
// handler spans, each the child of the one before, each from its process.
func requireExecutionTrace(t *testing.T, tr testenv.Trace, id, rootName, job, handler, service string) {
	t.Helper()
	roots := tr.Roots()
	require.Len(t, roots, 1, "one root:\n%s", tr)
	root := roots[0]
	require.Equal(t, rootName, root.OperationName, "\n%s", tr)
	require.Equal(t, "tockd", tr.Service(root))
	require.Equal(t, id, root.TagString("tock.execution.id"))

	chain := []struct{ name, service string }{
		{"tock.dispatch " + job, "tockd"},
		{"tock.agent.execute " + handler, "tock-agent"},
		{"tock.handler " + handler, service},
	}
	parent := root
	for _, want := range chain {
		spans := tr.SpansNamed(want.name)
		require.Len(t, spans, 1, "one %s span:\n%s", want.name, tr)
		s := spans[0]
		require.Equal(t, parent.SpanID, s.ParentSpanID(), "%s is a child of %s:\n%s", want.name, parent.OperationName, tr)
		require.Equal(t, want.service, tr.Service(s), "%s comes from %s", want.name, want.service)
		require.Equal(t, id, s.TagString("tock.execution.id"), "%s names the execution", want.name)
		parent = s
	}
	dispatch := tr.SpansNamed("tock.dispatch " + job)[0]
	require.NotEmpty(t, dispatch.TagString("tock.agent.id"))
	require.Equal(t, "weighted_least_connections", dispatch.TagString("tock.dispatch.strategy"))
	require.NotEmpty(t, dispatch.TagString("tock.agent.in_flight"))
	require.NotEmpty(t, dispatch.TagString("tock.agent.weight"))
	if strings.HasPrefix(rootName, "tock.fire ") {
		require.NotEmpty(t, root.TagString("tock.fire.lateness_seconds"))
	}
}
