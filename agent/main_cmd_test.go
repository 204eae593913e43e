package agent_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/agent"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"github.com/tockhq/tock/tools/testenv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMainRejectsBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--weight", "0"}, "--weight 0: must be at least 1"},
		{[]string{"--capacity", "-3"}, "--capacity -3"},
		{[]string{"--discovery", "etcd"}, `--discovery "etcd": want builtin or consul`},
		{[]string{"--discovery", "consul", "--register", "127.0.0.1:7400"}, "--register is for --discovery builtin"},
		{[]string{"--discovery", "consul", "--consul-service", ""}, "--consul-service must not be empty"},
		{[]string{"--metrics-addr", "7404"}, "--metrics-addr"},
		{[]string{"--labels", "zone"}, "--labels"},
		{[]string{"--labels", "a=1,a=2"}, `label "a" given twice`},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--listen", "nowhere"}, "--listen"},
		{[]string{"--app-addr", "unix://"}, "empty unix socket path"},
		{[]string{"--register-ttl", "100ms"}, "--register-ttl"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
		{[]string{"extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		m := &agent.Main{Stderr: &stderr, Getenv: func(string) string { return "" }}
		err := m.Run(context.Background(), tt.args)
		require.ErrorContains(t, err, tt.want, "args %v", tt.args)
		require.Equal(t, agent.ExitUsage, agent.ExitCode(err), "args %v", tt.args)
	}
}

func TestMainHelp(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := (&agent.Main{Stderr: &stderr}).Run(context.Background(), []string{"-help"})
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Equal(t, agent.ExitOK, agent.ExitCode(err))
	require.Contains(t, stderr.String(), "-app-addr")
}

func TestMainRunsAndStops(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stop at once: the agent starts, drains nothing and stops
	m := &agent.Main{Stderr: &stderr, Getenv: func(string) string { return "" }}
	err := m.Run(ctx, []string{
		"--listen", "127.0.0.1:0", "--app-addr", "127.0.0.1:1", "--register", "",
		"--labels", "zone=eu-1,tier=gold", "--log-format", "json", "--id", "cli-agent",
	})
	require.NoError(t, err)
	require.Equal(t, agent.ExitOK, agent.ExitCode(err))
	require.Contains(t, stderr.String(), `"agent_id":"cli-agent"`)
}

// mainRun is a tock-agent command running in the test.
type mainRun struct {
	t    *testing.T
	logs *syncBuffer
	stop context.CancelFunc
	done chan error
}

// runMain runs tock-agent with args (JSON logs at debug level are added) until the test stops
// it or ends.
func runMain(t *testing.T, getenv func(string) string, args ...string) *mainRun {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	m := &mainRun{t: t, logs: &syncBuffer{}, stop: stop, done: make(chan error, 1)}
	cmd := &agent.Main{Stderr: m.logs, Getenv: getenv}
	args = append([]string{"--log-format", "json", "--log-level", "debug"}, args...)
	go func() { m.done <- cmd.Run(ctx, args) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-m.done:
		case <-time.After(waitFor):
			t.Error("tock-agent did not stop")
		}
	})
	return m
}

// logged waits for a log line with the message and returns it.
func (m *mainRun) logged(msg string) map[string]any {
	m.t.Helper()
	var line map[string]any
	require.Eventually(m.t, func() bool {
		lines := m.logs.linesWith("msg", msg)
		if len(lines) > 0 {
			line = lines[0]
		}
		return line != nil
	}, waitFor, tick, "no %q in the log:\n%s", msg, m.logs)
	return line
}

// wait stops the command and returns what Run returned.
func (m *mainRun) wait() error {
	m.t.Helper()
	m.stop()
	select {
	case err := <-m.done:
		m.done <- err // for the cleanup
		return err
	case <-time.After(waitFor):
		m.t.Fatal("tock-agent did not stop")
	}
	return nil
}

func noEnv(string) string { return "" }

func TestMainServesMetrics(t *testing.T) {
	t.Parallel()
	m := runMain(t, noEnv, "--listen", "127.0.0.1:0", "--app-addr", "127.0.0.1:1", "--register", "",
		"--metrics-addr", "127.0.0.1:0", "--capacity", "9")
	addr := m.logged("serving metrics")["address"].(string)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(path string) (int, string) {
		resp, err := client.Get("http://" + addr + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, body := get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "tock_agent_capacity 9")
	require.Contains(t, body, "go_goroutines")
	require.Contains(t, body, "process_cpu_seconds_total")
	code, body = get("/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "local service: unreachable")
	require.NoError(t, m.wait())
}

// TestMainConsulDiscovery sets CONSUL_HTTP_ADDR, so it cannot run in parallel.
func TestMainConsulDiscovery(t *testing.T) {
	c := testenv.Consul(t)
	t.Setenv("CONSUL_HTTP_ADDR", c.HTTPAddr)
	client := consulClient(t, c.HTTPAddr)
	m := runMain(t, noEnv, "--discovery", "consul", "--consul-service", "tock-agent-blue",
		"--listen", "127.0.0.1:0", "--app-addr", "127.0.0.1:1", "--id", "cli-agent", "--service", "reports")
	m.logged("registered")
	services, _, err := client.Catalog().Service("tock-agent-blue", agent.ConsulTag, nil)
	require.NoError(t, err)
	require.Len(t, services, 1)
	require.Equal(t, "tock-agent-blue-cli-agent", services[0].ServiceID)
	require.Equal(t, "reports", services[0].ServiceMeta[agent.ConsulMetaService])

	require.NoError(t, m.wait())
	m.logged("deregistered")
	services, _, err = client.Catalog().Service("tock-agent-blue", "", nil)
	require.NoError(t, err)
	require.Empty(t, services)
}

// TestMainExportsTraces sets OTEL_* variables, so it cannot run in parallel.
func TestMainExportsTraces(t *testing.T) {
	j := testenv.Jaeger(t)
	for _, tt := range []struct{ protocol, endpoint, traceID string }{
		{"grpc", "http://" + j.OTLPGRPCAddr, "4bf92f3577b34da6a3ce929d0e0e4701"},
		{"http/protobuf", "http://" + j.OTLPHTTPAddr, "4bf92f3577b34da6a3ce929d0e0e4702"},
	} {
		t.Run(tt.protocol, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tt.endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tt.protocol)
			t.Setenv("OTEL_SERVICE_NAME", "tock-agent-under-test")
			e := setup(t, nil) // a worker, and an agent the test does not use
			m := runMain(t, os.Getenv, "--listen", "127.0.0.1:0", "--app-addr", e.app.Addr().String(), "--register", "")
			addr := m.logged("agent serving")["address"].(string)
			m.logged("connected to local service")

			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			defer conn.Close()
			cli := &env{t: t, conn: conn}
			r, _ := cli.connect(1)
			asg := assignment("exported", "echo", 1)
			asg.TraceContext = map[string]string{"traceparent": "00-" + tt.traceID + "-" + parentSpanID + "-01"}
			r.assign(asg)
			res := r.result("exported")
			require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, res.GetOutcome())
			r.ack(res)                   // so that the drain need not wait for it
			require.NoError(t, m.wait()) // flushes the spans

			tr := j.WaitForTrace(tt.traceID, func(tr testenv.Trace) bool {
				return len(tr.SpansNamed("tock.agent.execute echo")) == 1
			})
			span := tr.SpansNamed("tock.agent.execute echo")[0]
			require.Equal(t, parentSpanID, span.ParentSpanID())
			require.Equal(t, "tock-agent-under-test", tr.Service(span))
			require.Equal(t, "exported", span.TagString("tock.execution.id"))
		})
	}
}
