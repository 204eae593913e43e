package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// w10 measures SDK parity: W2's open-loop load at 1,000 triggers per second with the noop
// handler served by the Go SDK (the bench handler service, handlersvc.go) and by the Python
// SDK (pyhandler/handler_service.py, run by the repository's .venv). Both note their start
// instant the same way and serve their notes over the same HTTP protocol. The two clusters
// are started together and take turns in every repetition.
type w10 struct{}

func (w10) ID() string   { return "W10" }
func (w10) Name() string { return "SDK parity: W2 at 1k/s with Go and Python handlers" }

// w10SDK is a handler service.
type w10SDK struct {
	// Name is the case's short name, Title its description.
	Name, Title string
	// Cmd runs the handler service; nil for the Go one (this program).
	Cmd []string
}

// w10Load returns the load of the quick or the full set.
func w10Load(quick bool) loadCase {
	if quick {
		return loadCase{Name: "200", Rate: 200, Warmup: time.Second, Measure: 2 * time.Second}
	}
	return loadCase{Name: "1k", Rate: 1000, Warmup: 3 * time.Second, Measure: 20 * time.Second}
}

func (w w10) Run(ctx context.Context, env *Env) ([]Result, error) {
	python := filepath.Join(env.Root, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		env.statusf("W10", "skipped: no Python at .venv/bin/python in the repository; make the venv with the SDK with `make .venv/.installed`")
		return nil, nil
	}
	script := filepath.Join(env.Root, "tools", "bench", "pyhandler", "handler_service.py")
	pyVersion, err := pythonVersions(ctx, python)
	if err != nil {
		env.statusf("W10", "skipped: the venv's Python cannot import the tock SDK (%v); make it with `make .venv/.installed`", err)
		return nil, nil
	}
	lc := w10Load(env.Quick)
	all := []w10SDK{
		{Name: "go", Title: "Go SDK (sdk-go/worker)"},
		{Name: "python", Title: "Python SDK (tock, asyncio) — " + pyVersion, Cmd: []string{python, script}},
	}
	chosen, err := env.selectCases([]string{"go", "python"})
	if err != nil {
		return nil, err
	}
	var sdks []w10SDK
	for _, s := range all {
		if slices.Contains(chosen, s.Name) {
			sdks = append(sdks, s)
		}
	}

	clusters := make([]*tockCluster, len(sdks))
	defer func() {
		for _, c := range clusters {
			if c != nil {
				_ = c.close(context.WithoutCancel(ctx))
			}
		}
	}()
	for i, s := range sdks {
		if clusters[i], err = env.startTock(ctx, clusterConfig{Name: "w10_" + s.Name, Capacity: lc.capacity(), HandlerCmd: s.Cmd}); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	runs := make([][]*loadRun, len(sdks))
	reps := loadReps(env)
	for rep := range reps {
		for i, s := range sdks {
			run, err := measureLoad(ctx, env, clusters[i], loadRepTag("W10", s.Name, rep, reps), lc, fmt.Sprintf("w10-%s-r%03d", s.Name, rep+1))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
			runs[i] = append(runs[i], run)
		}
	}

	goIdx := slices.IndexFunc(sdks, func(s w10SDK) bool { return s.Name == "go" })
	results := make([]Result, len(sdks))
	for i, s := range sdks {
		r := &results[i]
		*r = Result{Workload: "W10", Case: s.Name, Title: fmt.Sprintf("SDK parity at %s (W2 load): %s", formatValue(lc.Rate, "/s"), s.Title)}
		for rep, run := range runs[i] {
			run.addTo(r, loadTargets{})
			_, _, handler, _, _ := run.cpuPerExec()
			r.add("handler_cpu", "handler service CPU per execution", "µs", "", handler)
			r.add("handler_rss", "handler service peak RSS", "MB", "", float64(run.after.handler.HWM)/(1<<20))
			if goIdx < 0 || i == goIdx {
				continue
			}
			base := runs[goIdx][rep]
			_, _, baseHandler, _, _ := base.cpuPerExec()
			s, bs := summarize(run.dueToStart), summarize(base.dueToStart)
			r.add("p50_overhead", "trigger→start p50 minus Go's", "ms", "", s.P50-bs.P50)
			r.add("p99_overhead", "trigger→start p99 minus Go's", "ms", "", s.P99-bs.P99)
			r.add("cpu_overhead", "handler service CPU per execution minus Go's", "µs", "", handler-baseHandler)
			r.add("rate_overhead", "handler starts per second minus Go's", "/s", "", run.startRate-base.startRate)
		}
		r.Notes = append(r.Notes, loadNotes(env, lc)...)
		r.Notes = append(r.Notes, w10Note(s))
		r.Summary = w10Summary(r, lc, s)
	}
	return results, nil
}

// w10Note says what the handler service of an SDK is.
func w10Note(s w10SDK) string {
	common := "Both SDKs' clusters are started before the first repetition and take turns in every repetition; " +
		"\"minus Go's\" compares a repetition with Go's repetition of the same round. Handler service CPU: its " +
		"process's CPU time from the first measured trigger until every result was committed, divided by the " +
		"executions run (it includes answering the benchmark's record queries once the load is over)."
	if s.Cmd == nil {
		return "Go: the bench handler service (this program, TOCK_BENCH_ROLE=handler-service) on sdk-go/worker; the noop " +
			"handler notes time.Now() as its first statement. " + common
	}
	return "Python: tools/bench/pyhandler/handler_service.py on the tock SDK (grpc.aio), run by the repository's " +
		".venv; the noop handler is `async def` and notes time.time_ns() as its first statement, and the notes are " +
		"served over HTTP from a thread, as the Go service serves them. The opentelemetry-api package is installed " +
		"in that venv (the SDK's dev extra), so the SDK opens a (non-recording) span around every handler. " + common
}

// w10Summary is the one-line summary of an SDK.
func w10Summary(r *Result, lc loadCase, s w10SDK) string {
	med := func(k string) string {
		m := r.find(k)
		if m == nil {
			return "–"
		}
		return formatValue(r.medianOf(k), m.Unit)
	}
	out := fmt.Sprintf("%s at %s: starts %s; trigger→start p50 %s, p99 %s; handler service CPU %s per execution",
		s.Name, formatValue(lc.Rate, "/s"), med("start_rate"), med("trigger_start_p50"), med("trigger_start_p99"), med("handler_cpu"))
	if r.find("p50_overhead") != nil {
		out += fmt.Sprintf("; minus Go's: p50 %s, p99 %s, CPU %s", med("p50_overhead"), med("p99_overhead"), med("cpu_overhead"))
	}
	return out + fmt.Sprintf("; not run %s, run twice %s", formatValue(r.totalOf("not_run"), "count"),
		formatValue(r.totalOf("run_twice"), "count"))
}

// pythonVersions returns the versions of Python, the tock SDK and grpcio in the venv, and
// fails when the SDK cannot be imported.
func pythonVersions(ctx context.Context, python string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c",
		"import platform, grpc, tock; print(f'Python {platform.python_version()}, tock-sdk {tock.__version__}, grpcio {grpc.__version__}')").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}
