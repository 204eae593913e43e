package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitTimeout bounds WaitForTrace and WaitForTraces.
const waitTimeout = 30 * time.Second

// ErrTraceNotFound is returned by JaegerServer.Trace for a trace Jaeger does not have.
var ErrTraceNotFound = errors.New("trace not found")

// JaegerServer is a real Jaeger v2 running as a child process with in-memory storage: an OTLP
// receiver (gRPC and HTTP) and the query API, each on a free loopback port. Its addresses stay
// the same across Stop and Restart; its traces do not survive them.
//
// Stop, Restart and the Wait methods fail the test on error, so call them from the test's
// goroutine.
type JaegerServer struct {
	// OTLPGRPCAddr is the OTLP/gRPC receiver's host:port (otlptracegrpc.WithEndpoint with
	// WithInsecure).
	OTLPGRPCAddr string
	// OTLPHTTPAddr is the OTLP/HTTP receiver's host:port (otlptracehttp.WithEndpoint with
	// WithInsecure); it takes traces at /v1/traces.
	OTLPHTTPAddr string
	// QueryURL is the query API's base URL, http://127.0.0.1:port: /api/services,
	// /api/traces/<id>, /api/traces?service=….
	QueryURL string
	// QueryGRPCAddr is the query service's gRPC host:port (api_v2 and api_v3).
	QueryGRPCAddr string
	// Dir holds Jaeger's configuration (jaeger.yaml) and log (jaeger.log).
	Dir string

	t      testing.TB
	proc   *process
	client *http.Client
}

// Jaeger starts Jaeger for t on free loopback ports, waits until its receivers and query API
// answer, and stops it when t ends. It skips t when there is no jaeger binary (see the package
// documentation).
func Jaeger(t testing.TB) *JaegerServer {
	t.Helper()
	bin := jaegerTool.need(t)
	j := &JaegerServer{Dir: t.TempDir(), t: t, client: newHTTPClient(t)}

	var errs []error
	for range startAttempts {
		ports, err := freePorts(4)
		if err != nil {
			t.Fatalf("testenv: jaeger ports: %v", err)
		}
		j.OTLPGRPCAddr = loopback(ports[0])
		j.OTLPHTTPAddr = loopback(ports[1])
		j.QueryURL = "http://" + loopback(ports[2])
		j.QueryGRPCAddr = loopback(ports[3])
		config := filepath.Join(j.Dir, "jaeger.yaml")
		if err := os.WriteFile(config, []byte(j.config()), 0o644); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		j.proc = newProcess(t, "jaeger", bin, j.Dir, []string{"--config=file:" + config}, j.ready)
		err = j.proc.start()
		if err == nil {
			t.Cleanup(j.proc.cleanup)
			return j
		}
		errs = append(errs, err)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("testenv: %v", errors.Join(errs...))
	return nil
}

// config returns Jaeger's configuration for the server's addresses.
func (j *JaegerServer) config() string {
	return JaegerConfig(JaegerAddrs{
		QueryHTTP: strings.TrimPrefix(j.QueryURL, "http://"), QueryGRPC: j.QueryGRPCAddr,
		OTLPGRPC: j.OTLPGRPCAddr, OTLPHTTP: j.OTLPHTTPAddr,
	}, 100000, "info")
}

// JaegerAddrs are the host:port addresses of a Jaeger's listeners.
type JaegerAddrs struct {
	QueryHTTP, QueryGRPC, OTLPGRPC, OTLPHTTP string
}

// JaegerConfig returns a configuration for Jaeger v2: the all-in-one one cut down to an OTLP
// receiver and the query API on the given addresses, in-memory storage of at most maxTraces
// traces, logs at logLevel, and no telemetry of its own (no metrics port, no self-tracing).
func JaegerConfig(a JaegerAddrs, maxTraces int, logLevel string) string {
	return fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: %s

extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: %d
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: %q
    grpc:
      endpoint: %q

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
      http:
        endpoint: %q

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, logLevel, maxTraces, a.QueryHTTP, a.QueryGRPC, a.OTLPGRPC, a.OTLPHTTP)
}

// ready returns nil once the query API answers and both receivers take connections. The
// receivers start last, so an OTLP/HTTP export that succeeds means everything is up.
func (j *JaegerServer) ready(ctx context.Context) error {
	if _, err := j.Services(ctx); err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", j.OTLPGRPCAddr)
	if err != nil {
		return err
	}
	_ = conn.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+j.OTLPHTTPAddr+"/v1/traces", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("OTLP/HTTP: %s", resp.Status)
	}
	return nil
}

// Services returns the names of the services Jaeger has spans of.
func (j *JaegerServer) Services(ctx context.Context) ([]string, error) {
	var services []string
	if err := j.query(ctx, "/api/services", &services); err != nil {
		return nil, err
	}
	return services, nil
}

// Trace returns the trace with the given id (32 hex digits, as trace.TraceID.String gives).
// It returns ErrTraceNotFound when Jaeger has no span of it.
func (j *JaegerServer) Trace(ctx context.Context, traceID string) (Trace, error) {
	var traces []Trace
	if err := j.query(ctx, "/api/traces/"+url.PathEscape(traceID), &traces); err != nil {
		return Trace{}, err
	}
	if len(traces) == 0 {
		return Trace{}, fmt.Errorf("%s: %w", traceID, ErrTraceNotFound)
	}
	return traces[0], nil
}

// TraceQuery selects traces for FindTraces.
type TraceQuery struct {
	// Service is the service.name the traces have spans of. Required.
	Service string
	// Operation, when set, keeps the traces with a span of that name.
	Operation string
	// Tags, when set, keeps the traces with a span having all these attributes.
	Tags map[string]string
	// Lookback is how far back from now the traces may start. Default one hour.
	Lookback time.Duration
	// Limit is the most traces returned. Default 100.
	Limit int
}

// FindTraces returns the traces that match q, newest first.
func (j *JaegerServer) FindTraces(ctx context.Context, q TraceQuery) ([]Trace, error) {
	if q.Service == "" {
		return nil, errors.New("find traces: no service")
	}
	if q.Lookback == 0 {
		q.Lookback = time.Hour
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	v := url.Values{}
	v.Set("service", q.Service)
	if q.Operation != "" {
		v.Set("operation", q.Operation)
	}
	if len(q.Tags) > 0 {
		tags, err := json.Marshal(q.Tags)
		if err != nil {
			return nil, err
		}
		v.Set("tags", string(tags))
	}
	now := time.Now()
	v.Set("start", fmt.Sprint(now.Add(-q.Lookback).UnixMicro()))
	v.Set("end", fmt.Sprint(now.Add(time.Minute).UnixMicro())) // room for clock skew
	v.Set("limit", fmt.Sprint(q.Limit))
	var traces []Trace
	if err := j.query(ctx, "/api/traces?"+v.Encode(), &traces); err != nil {
		return nil, err
	}
	return traces, nil
}

// Traces returns the traces of service from the last hour, newest first.
func (j *JaegerServer) Traces(ctx context.Context, service string) ([]Trace, error) {
	return j.FindTraces(ctx, TraceQuery{Service: service})
}

// WaitForTrace polls Jaeger until it has the trace with the given id and done (when not nil)
// returns true for it, and returns it. Spans reach Jaeger a while after they end (exporters
// batch them), so tests wait with this rather than asking once. It fails the test after 30
// seconds, showing the trace as it last was.
func (j *JaegerServer) WaitForTrace(traceID string, done func(Trace) bool) Trace {
	j.t.Helper()
	var (
		last    Trace
		lastErr error
	)
	ok := j.poll(func(ctx context.Context) bool {
		last, lastErr = j.Trace(ctx, traceID)
		return lastErr == nil && (done == nil || done(last))
	})
	if !ok {
		if lastErr != nil {
			j.t.Fatalf("testenv: trace %s not in Jaeger after %s: %v", traceID, waitTimeout, lastErr)
		}
		j.t.Fatalf("testenv: trace %s not complete after %s; it has:\n%s", traceID, waitTimeout, last)
	}
	return last
}

// WaitForTraces polls Jaeger until done returns true for the traces q selects (at least one
// when done is nil), and returns them. It fails the test after 30 seconds.
func (j *JaegerServer) WaitForTraces(q TraceQuery, done func([]Trace) bool) []Trace {
	j.t.Helper()
	var (
		last    []Trace
		lastErr error
	)
	ok := j.poll(func(ctx context.Context) bool {
		last, lastErr = j.FindTraces(ctx, q)
		if lastErr != nil {
			return false
		}
		if done == nil {
			return len(last) > 0
		}
		return done(last)
	})
	if !ok {
		j.t.Fatalf("testenv: traces of %q not as expected after %s (last error: %v); Jaeger has %d:\n%s",
			q.Service, waitTimeout, lastErr, len(last), Traces(last))
	}
	return last
}

// poll calls check until it returns true (poll returns true) or waitTimeout passes (false).
func (j *JaegerServer) poll(check func(ctx context.Context) bool) bool {
	ctx, cancel := context.WithTimeout(j.t.Context(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if check(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// query fetches path from the query API and decodes the answer's data into v.
func (j *JaegerServer) query(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/api/traces/") {
		return nil // leaves v empty: Trace reports ErrTraceNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	var envelope struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if len(envelope.Errors) > 0 {
		return fmt.Errorf("GET %s: %s", path, envelope.Errors[0].Msg)
	}
	if len(envelope.Data) == 0 || string(envelope.Data) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(envelope.Data))
	dec.UseNumber() // int64 tags keep every digit
	return dec.Decode(v)
}

// Stop stops Jaeger gracefully. Stopping a stopped Jaeger does nothing.
func (j *JaegerServer) Stop() {
	j.t.Helper()
	if err := j.proc.stop(true); err != nil {
		j.t.Fatalf("testenv: %v", err)
	}
}

// Restart stops Jaeger if it is running and starts it again, empty, on the same ports.
func (j *JaegerServer) Restart() {
	j.t.Helper()
	j.Stop()
	if err := j.proc.start(); err != nil {
		j.t.Fatalf("testenv: restart: %v", err)
	}
}

// Running reports whether the Jaeger process is running.
func (j *JaegerServer) Running() bool {
	return j.proc.running()
}

// LogTail returns the last n lines of Jaeger's log, across restarts.
func (j *JaegerServer) LogTail(n int) string {
	return j.proc.logTail(n)
}
