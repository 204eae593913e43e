package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tockhq/tock/tools/testenv"
)

// w9 measures what tracing costs: W2's open-loop load at 1,000 triggers per second with
// tracing off, with 1% of executions sampled and with all of them, tockd, the agent and the
// handler service each exporting over OTLP to a real Jaeger the benchmark starts. The modes
// run on clusters of their own, started together, and take turns in every repetition, so
// that they share the machine's moods alike.
type w9 struct{}

func (w9) ID() string   { return "W9" }
func (w9) Name() string { return "tracing cost: W2 at 1k/s with tracing off, 1% and 100% sampled" }

// w9Mode is a tracing configuration.
type w9Mode struct {
	// Name is the case's short name, Title its description.
	Name, Title string
	// Ratio is the share of executions sampled; Off means no OTLP endpoint at all.
	Ratio float64
	Off   bool
}

// env returns the OTEL_* variables of the mode for every process of the cluster: where
// tockd starts an execution's trace it samples Ratio of them, and the agent and the handler
// service follow (parentbased), as docs/observability.md recommends.
func (m w9Mode) env(otlpGRPC string) []string {
	if m.Off {
		return nil
	}
	out := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlpGRPC, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}
	if m.Ratio >= 1 {
		return append(out, "OTEL_TRACES_SAMPLER=parentbased_always_on")
	}
	return append(out, "OTEL_TRACES_SAMPLER=parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG="+strconv.FormatFloat(m.Ratio, 'g', -1, 64))
}

// w9Setup returns the load and the modes of the quick or the full set.
func w9Setup(quick bool) (loadCase, []w9Mode) {
	off := w9Mode{Name: "off", Title: "tracing off (no OTLP endpoint)", Off: true}
	one := w9Mode{Name: "1pct", Title: "1% of executions sampled, exported to Jaeger", Ratio: 0.01}
	all := w9Mode{Name: "100pct", Title: "every execution sampled, exported to Jaeger", Ratio: 1}
	if quick {
		return loadCase{Name: "200", Rate: 200, Warmup: time.Second, Measure: 2 * time.Second}, []w9Mode{off, all}
	}
	return loadCase{Name: "1k", Rate: 1000, Warmup: 3 * time.Second, Measure: 20 * time.Second}, []w9Mode{off, one, all}
}

// w9Settle is how long to wait after a traced mode's repetition, so that the spans its
// processes still buffer (the batch span processor exports every 5 s) reach Jaeger before
// the next mode is measured.
const w9Settle = 6 * time.Second

func (w w9) Run(ctx context.Context, env *Env) ([]Result, error) {
	bin := filepath.Join(env.Root, ".bin", "jaeger")
	if _, err := os.Stat(bin); err != nil {
		env.statusf("W9", "skipped: no Jaeger at .bin/jaeger in the repository; build it with `make .bin/jaeger`")
		return nil, nil
	}
	lc, all := w9Setup(env.Quick)
	var names []string
	for _, m := range all {
		names = append(names, m.Name)
	}
	chosen, err := env.selectCases(names)
	if err != nil {
		return nil, err
	}
	var modes []w9Mode
	for _, m := range all {
		if slices.Contains(chosen, m.Name) {
			modes = append(modes, m)
		}
	}

	j, err := startJaeger(ctx, env, bin)
	if err != nil {
		return nil, fmt.Errorf("start Jaeger: %w", err)
	}
	defer func() { _ = j.stop() }()
	clusters := make([]*tockCluster, len(modes))
	defer func() {
		for _, c := range clusters {
			if c != nil {
				_ = c.close(context.WithoutCancel(ctx))
			}
		}
	}()
	for i, m := range modes {
		if clusters[i], err = env.startTock(ctx, clusterConfig{Name: "w9_" + m.Name, Capacity: lc.capacity(), Env: m.env(j.otlpGRPC)}); err != nil {
			return nil, fmt.Errorf("mode %s: %w", m.Name, err)
		}
	}

	results := make([]Result, len(modes))
	runs := make([][]*loadRun, len(modes))
	traced := make([]string, len(modes)) // what Jaeger holds of each mode's last repetition
	for i, m := range modes {
		results[i] = Result{Workload: "W9", Case: m.Name, Title: fmt.Sprintf("Tracing cost at %s (W2 load): %s",
			formatValue(lc.Rate, "/s"), m.Title)}
	}
	reps := loadReps(env)
	for rep := range reps {
		for i, m := range modes {
			tag := loadRepTag("W9", m.Name, rep, reps)
			job := fmt.Sprintf("w9-%s-r%03d", m.Name, rep+1)
			run, err := measureLoad(ctx, env, clusters[i], tag, lc, job, j.proc.pid())
			if err != nil {
				return results[:0], fmt.Errorf("mode %s: %w", m.Name, err)
			}
			runs[i] = append(runs[i], run)
			switch {
			case m.Off:
			case rep == reps-1:
				if traced[i], err = j.check(ctx, job, run.ran, m.Ratio); err != nil {
					return nil, fmt.Errorf("mode %s: %w", m.Name, err)
				}
			case !env.Quick:
				if err := sleepCtx(ctx, w9Settle); err != nil {
					return nil, err
				}
			}
		}
	}

	offIdx := slices.IndexFunc(modes, func(m w9Mode) bool { return m.Off })
	for i, m := range modes {
		r := &results[i]
		for rep, run := range runs[i] {
			run.addTo(r, loadTargets{})
			tockd, agent, handler, _, _ := run.cpuPerExec()
			r.add("traced_cpu", "tockd + agent + handler CPU per execution", "µs", "", tockd+agent+handler)
			r.add("tockd_cpu", "tockd CPU per execution", "µs", "", tockd)
			r.add("agent_cpu", "agent CPU per execution", "µs", "", agent)
			r.add("handler_cpu", "handler service CPU per execution", "µs", "", handler)
			if !m.Off {
				r.add("jaeger_cpu", "Jaeger CPU per execution", "µs", "", run.perExec(run.before.watched, run.after.watched))
			}
			if offIdx < 0 || m.Off {
				continue
			}
			base := runs[offIdx][rep]
			bt, ba, bh, _, _ := base.cpuPerExec()
			target := ""
			if m.Ratio == 0.01 {
				target = "≤ 5 %"
			}
			change := func(v, b float64) float64 { return 100 * (v/b - 1) }
			r.add("rate_change", "handler starts per second vs off", "%", "", change(run.startRate, base.startRate))
			r.add("cpu_change", "CPU per execution vs off (throughput cost)", "%", target,
				change(tockd+agent+handler, bt+ba+bh))
			p99, bp99 := summarize(run.dueToStart).P99, summarize(base.dueToStart).P99
			r.add("p99_change", "trigger→start p99 vs off", "%", "", change(p99, bp99))
			r.add("p99_diff", "trigger→start p99 minus off's", "ms", "", p99-bp99)
		}
		r.Notes = append(r.Notes, loadNotes(env, lc)...)
		r.Notes = append(r.Notes, w9Notes(m, j)...)
		if traced[i] != "" {
			r.Notes = append(r.Notes, traced[i])
		}
		r.Summary = w9Summary(r, lc, m)
	}
	return results, nil
}

// w9Notes say how a mode was set up.
func w9Notes(m w9Mode, j *jaeger) []string {
	out := []string{"The modes (" + "off, 1% and 100% in the full run) each have a cluster of their own, all started before the " +
		"first repetition; in every repetition each mode runs its load in turn. \"vs off\" compares a repetition with " +
		"off's repetition of the same round. Throughput cost: the change in CPU time of tockd, the agent and the " +
		"handler service per execution, since at a fixed arrival rate below saturation the rate itself does not move; " +
		"on a CPU-bound machine the throughput falls in the same proportion."}
	if m.Off {
		return append(out, "Off: no OTEL_EXPORTER_OTLP_ENDPOINT, so tockd records nothing (executions still get trace ids) and "+
			"the handler service runs without the SDK's tracing interceptor.")
	}
	return append(out, fmt.Sprintf("Tracing on: tockd, the agent and the handler service get %s; the handler service "+
		"installs sdk-go/worker/otelworker's interceptor and a tracer provider built by controlplane/telemetry from the "+
		"same variables (service tock-bench-handler). Spans go to %s (in-memory storage, at most %d traces), started "+
		"by the benchmark; its CPU is shown apart. %s",
		"`"+strings.Join(m.env("<jaeger>:4317"), "`, `")+"`", j.version, jaegerMaxTraces,
		fmt.Sprintf("In full runs each traced repetition is followed by %s of quiet, so that buffered spans are exported before the next mode runs.", w9Settle)))
}

// w9Summary is the one-line summary of a mode.
func w9Summary(r *Result, lc loadCase, m w9Mode) string {
	med := func(k string) string {
		mm := r.find(k)
		if mm == nil {
			return "–"
		}
		return formatValue(r.medianOf(k), mm.Unit)
	}
	s := fmt.Sprintf("%s at %s: starts %s; trigger→start p50 %s, p99 %s; tockd+agent+handler CPU %s per execution",
		m.Name, formatValue(lc.Rate, "/s"), med("start_rate"), med("trigger_start_p50"), med("trigger_start_p99"), med("traced_cpu"))
	if r.find("cpu_change") != nil {
		s += fmt.Sprintf("; vs off: CPU per execution %s, starts/s %s, p99 %s (%s)", med("cpu_change"), med("rate_change"),
			med("p99_change"), med("p99_diff"))
	}
	return s + fmt.Sprintf("; not run %s, run twice %s", formatValue(r.totalOf("not_run"), "count"),
		formatValue(r.totalOf("run_twice"), "count"))
}

// jaegerMaxTraces bounds the traces Jaeger keeps in memory.
const jaegerMaxTraces = 50000

// jaeger is a real Jaeger v2 (the repository's .bin/jaeger) with in-memory storage: an OTLP
// receiver and the query API on loopback.
type jaeger struct {
	proc     *proc
	otlpGRPC string // host:port of the OTLP/gRPC receiver
	query    string // base URL of the query API
	version  string
}

// startJaeger starts Jaeger with tools/testenv's configuration (every listener on a free
// loopback port, no telemetry of its own)
// and waits until its query API answers and its OTLP receiver takes connections.
func startJaeger(ctx context.Context, env *Env, bin string) (*jaeger, error) {
	dir := filepath.Join(env.Dir, "w9-jaeger")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addrs := make([]string, 4)
	for i := range addrs {
		var err error
		if addrs[i], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	j := &jaeger{otlpGRPC: addrs[0], query: "http://" + addrs[2], version: "Jaeger " + jaegerVersion(env.Root)}
	config := testenv.JaegerConfig(testenv.JaegerAddrs{
		QueryHTTP: addrs[2], QueryGRPC: addrs[3], OTLPGRPC: addrs[0], OTLPHTTP: addrs[1],
	}, jaegerMaxTraces, "warn")
	path := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		return nil, err
	}
	env.statusf("setup W9", "starting %s", j.version)
	p, err := startProc(dir, "jaeger", nil, nil, bin, "--config=file:"+path)
	if err != nil {
		return nil, err
	}
	j.proc = p
	if err := p.waitUntil(ctx, 60*time.Second, "serving its query API and OTLP receiver", func(ctx context.Context) bool {
		var services struct{}
		if j.get(ctx, "/api/services", &services) != nil {
			return false
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", j.otlpGRPC)
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	}); err != nil {
		p.kill()
		return nil, err
	}
	return j, nil
}

// jaegerVersion returns the version of the Jaeger module tools/jaeger pins, or "v2".
func jaegerVersion(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "tools", "jaeger", "go.mod"))
	if err != nil {
		return "v2"
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if k := slices.Index(f, "github.com/jaegertracing/jaeger"); k >= 0 && k+1 < len(f) {
			return "v2 (module github.com/jaegertracing/jaeger " + f[k+1] + ", built from tools/jaeger)"
		}
	}
	return "v2"
}

// stop stops Jaeger.
func (j *jaeger) stop() error { return j.proc.stop(syscall.SIGTERM, 10*time.Second) }

// get fetches a path of the query API as JSON into out.
func (j *jaeger) get(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return fetchJSON(ctx, http.DefaultClient, j.query+path, out)
}

// jaegerTraces is the query API's answer with traces.
type jaegerTraces struct {
	Data []struct {
		Spans []struct {
			OperationName string `json:"operationName"`
		} `json:"spans"`
	} `json:"data"`
}

// check says what Jaeger holds of job's executions: how many traces start with the job's
// trigger span, and how many of them have all four spans of an execution (trigger,
// dispatch, agent, handler). It asks for at most 1,000, and waits up to w9Settle for the
// exporters' last batches while fewer than nine tenths of those expected have arrived.
func (j *jaeger) check(ctx context.Context, job string, ran int, ratio float64) (string, error) {
	const limit = 1000
	q := url.Values{}
	q.Set("service", "tockd")
	q.Set("operation", "tock.trigger "+job)
	q.Set("limit", strconv.Itoa(limit))
	q.Set("lookback", "1h")
	want := min(limit, int(0.9*ratio*float64(ran)))
	deadline := time.Now().Add(w9Settle)
	var resp jaegerTraces
	for {
		resp = jaegerTraces{}
		if err := j.get(ctx, "/api/traces?"+q.Encode(), &resp); err != nil {
			return fmt.Sprintf("Jaeger check of %s failed: %v", job, err), nil
		}
		if len(resp.Data) >= want || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return "", err
		}
	}
	names := []string{"tock.trigger " + job, "tock.dispatch " + job, "tock.agent.execute " + noopHandler, "tock.handler " + noopHandler}
	complete := 0
	for _, tr := range resp.Data {
		seen := make(map[string]bool, len(tr.Spans))
		for _, sp := range tr.Spans {
			seen[sp.OperationName] = true
		}
		if !slices.ContainsFunc(names, func(n string) bool { return !seen[n] }) {
			complete++
		}
	}
	return fmt.Sprintf("Jaeger check (last repetition: %d executions, about %.0f of them sampled): Jaeger returned %d "+
		"traces rooted at `tock.trigger %s` (at most %d asked for), %d of them with all four spans (trigger, dispatch, "+
		"agent.execute, handler).", ran, ratio*float64(ran), len(resp.Data), job, limit, complete), nil
}
