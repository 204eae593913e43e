package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// w6 measures the sidecar's overhead: the bench handler service (sdk-go/worker) driven
// directly over tock.handler.v1 Execute, as an agent drives it, against the same service
// driven through a real tock-agent process over tock.agent.v1 Connect, as tockd drives it
// (agentdriver.go). Both ways run one execution at a time (closed loop) and at a fixed
// arrival rate (open loop); the added latency is the difference of the percentiles. The
// agent's memory and CPU come from /proc.
type w6 struct{}

func (w6) ID() string   { return "W6" }
func (w6) Name() string { return "sidecar overhead: handler called directly vs through tock-agent" }

const (
	// w6Rate is the open-loop arrival rate, executions per second.
	w6Rate = 500
	// w6Capacity is the agent's capacity: far above what either loop keeps in flight.
	w6Capacity = 1000
)

// w6Run is what one loop measured: the timings of the executions that ran, in microseconds,
// and how many did not run or did not succeed.
type w6Run struct {
	sendToStart, sendToResult []float64
	notRun, failed            int
}

func (w w6) Run(ctx context.Context, env *Env) ([]Result, error) {
	closedN, openN, warm, idleWait := 2000, 5000, 200, 5*time.Second
	if env.Quick {
		closedN, openN, warm, idleWait = 200, 200, 50, 500*time.Millisecond
	}
	bins, err := env.binaries(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(env.Dir, "w6")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	appAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	recAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env.statusf("setup w6", "starting the bench handler service")
	handler, err := startProc(dir, "handler-service", nil, append(os.Environ(), roleEnv+"="+roleHandler),
		bins.self, "-listen", appAddr, "-records", recAddr)
	if err != nil {
		return nil, err
	}
	defer func() { _ = handler.stop(syscall.SIGTERM, 30*time.Second) }()
	records := newHandlerClient(recAddr)
	if err := handler.waitUntil(ctx, 30*time.Second, "serving records", func(ctx context.Context) bool {
		_, err := records.count(ctx, recordFilter{})
		return err == nil
	}); err != nil {
		return nil, err
	}

	r := Result{Workload: "W6", Case: "sidecar", Title: fmt.Sprintf(
		"Sidecar overhead: %d executions one at a time and %d at %d/s, directly and through tock-agent", closedN, openN, w6Rate)}
	for rep := range quickReps(env) {
		tag := env.repTag("W6", "", rep)
		if err := w.rep(ctx, env, &r, tag, rep, dir, bins.agent, appAddr, records, closedN, openN, warm, idleWait); err != nil {
			return nil, err
		}
		if handler.exited() {
			return nil, handler.failure(fmt.Errorf("exited during the run: %v", handler.err))
		}
	}
	r.Notes = append(r.Notes,
		"direct: this program holds a tock.handler.v1 Execute stream to the bench handler service (sdk-go/worker) and "+
			"sends each Start itself, as tock-agent does. through the agent: this program is the control plane towards a "+
			"tock-agent process (dials its --listen address, Open with a session epoch and a 1 s heartbeat interval, Assign "+
			"with a UUIDv7 id, lease epoch 1 and a deadline 30 s ahead, Ack for every result, as tockd's dispatcher), and "+
			"the agent drives the same handler service. Same service, same loopback TCP, generated gRPC clients.",
		"send→start: the handler's first statement (time.Now() in the handler service) minus the instant just before "+
			"this program's Send; send→result: when this program received the result (Results from the agent, "+
			"Result from the service) minus the same instant. added = through the agent − direct, percentile by percentile.",
		fmt.Sprintf("closed loop: the next execution is sent when the previous result arrives; open loop: one every %s "+
			"whatever happens. %d warm-up executions each way before each repetition are not counted; each repetition "+
			"starts a fresh tock-agent (capacity %d, no registry).", time.Second/w6Rate, warm, w6Capacity),
		fmt.Sprintf("agent RSS idle: VmRSS %s after its session opened, before any execution; after load: VmRSS after "+
			"the repetition's executions; agent CPU per execution: the agent's on-CPU time (sum of its threads' "+
			"/proc/<pid>/task/*/schedstat) over the loop, divided by its executions.", idleWait))
	med := func(k string) string { return formatValue(r.medianOf(k), r.find(k).Unit) }
	r.Summary = fmt.Sprintf("added send→start p50 %s, p99 %s one at a time; p50 %s, p99 %s at %d/s (target p50 ≤ 200 µs); "+
		"agent RSS idle %s (target ≤ 25 MB), after load %s; agent CPU %s per execution at %d/s",
		med("added_closed_p50"), med("added_closed_p99"), med("added_open_p50"), med("added_open_p99"), w6Rate,
		med("agent_rss_idle"), med("agent_rss_load"), med("agent_cpu_open"), w6Rate)
	return []Result{r}, nil
}

// rep runs one repetition on a fresh agent.
func (w w6) rep(ctx context.Context, env *Env, r *Result, tag string, rep int, dir, agentBin, appAddr string,
	records *handlerClient, closedN, openN, warm int, idleWait time.Duration) (err error) {
	agentAddr, err := freeAddr()
	if err != nil {
		return err
	}
	env.statusf(tag, "starting tock-agent (capacity %d, no registry)", w6Capacity)
	agent, err := startProc(dir, fmt.Sprintf("tock-agent-%d", rep+1), nil, nil, agentBin,
		"--listen", agentAddr, "--app-addr", appAddr, "--register", "", "--service", benchService,
		"--id", "w6-agent", "--capacity", strconv.Itoa(w6Capacity), "--log-format", "json")
	if err != nil {
		return err
	}
	defer func() {
		if serr := agent.stop(syscall.SIGTERM, 30*time.Second); serr != nil && err == nil {
			err = serr
		}
	}()
	buffer := max(closedN, openN, warm) + 16
	var viaAgent *agentDriver
	if err := agent.waitUntil(ctx, 30*time.Second, "in session", func(ctx context.Context) bool {
		d, derr := dialAgent(ctx, agentAddr, "bench-control-plane", buffer)
		viaAgent = d
		return derr == nil
	}); err != nil {
		return err
	}
	defer func() { _ = viaAgent.close() }()
	if err := sleepCtx(ctx, idleWait); err != nil {
		return err
	}
	idle := usageOf(agent.pid())

	direct, err := dialService(ctx, appAddr, buffer)
	if err != nil {
		return err
	}
	defer func() { _ = direct.close() }()

	env.statusf(tag, "warm-up: %d executions each way", warm)
	for i, d := range []execDriver{direct, viaAgent} {
		if _, err := w.loop(ctx, d, records, fmt.Sprintf("w6-warm-%d-%d", rep, i), warm, 0); err != nil {
			return err
		}
	}

	type leg struct {
		key, mode string
		drv       execDriver
		n         int
		rate      float64
	}
	legs := []leg{
		{"direct", "closed", direct, closedN, 0},
		{"agent", "closed", viaAgent, closedN, 0},
		{"direct", "open", direct, openN, w6Rate},
		{"agent", "open", viaAgent, openN, w6Rate},
	}
	runs := map[string]w6Run{}
	cpu := map[string]time.Duration{}
	for _, l := range legs {
		what := "one at a time"
		if l.rate > 0 {
			what = fmt.Sprintf("at %.0f/s", l.rate)
		}
		env.statusf(tag, "%s: %d executions %s", l.key, l.n, what)
		cpu0 := threadsCPU(agent.pid())
		run, err := w.loop(ctx, l.drv, records, fmt.Sprintf("w6-%d-%s-%s", rep, l.key, l.mode), l.n, l.rate)
		if err != nil {
			return err
		}
		if l.key == "agent" {
			cpu[l.mode] = (threadsCPU(agent.pid()) - cpu0) / time.Duration(l.n)
		}
		runs[l.key+"_"+l.mode] = run
	}
	load := usageOf(agent.pid())
	if agent.exited() {
		return agent.failure(fmt.Errorf("exited during the run: %v", agent.err))
	}

	for _, mode := range []string{"closed", "open"} {
		d, a := runs["direct_"+mode], runs["agent_"+mode]
		ml := w6ModeLabel(mode)
		r.addDist("direct_"+mode, "direct send→start, "+ml, "µs", [3]string{}, d.sendToStart)
		r.addDist("agent_"+mode, "through agent send→start, "+ml, "µs", [3]string{}, a.sendToStart)
		ds, as := summarize(d.sendToStart), summarize(a.sendToStart)
		r.add("added_"+mode+"_p50", "added send→start p50, "+ml, "µs", "≤ 200 µs", as.P50-ds.P50)
		r.add("added_"+mode+"_p99", "added send→start p99, "+ml, "µs", "", as.P99-ds.P99)
		dr, ar := summarize(d.sendToResult), summarize(a.sendToResult)
		r.add("direct_result_"+mode+"_p50", "direct send→result p50, "+ml, "µs", "", dr.P50)
		r.add("agent_result_"+mode+"_p50", "through agent send→result p50, "+ml, "µs", "", ar.P50)
		r.add("added_result_"+mode+"_p50", "added send→result p50, "+ml, "µs", "", ar.P50-dr.P50)
		r.add("added_result_"+mode+"_p99", "added send→result p99, "+ml, "µs", "", ar.P99-dr.P99)
		env.statusf(tag, "%s: send→start p50 direct %s, through agent %s (added %s); p99 %s vs %s", ml,
			formatValue(ds.P50, "µs"), formatValue(as.P50, "µs"), formatValue(as.P50-ds.P50, "µs"),
			formatValue(ds.P99, "µs"), formatValue(as.P99, "µs"))
	}
	bad := 0
	for _, run := range runs {
		bad += run.notRun + run.failed
	}
	for _, mode := range []string{"closed", "open"} {
		r.add("agent_cpu_"+mode, "agent CPU per execution, "+w6ModeLabel(mode), "µs", "",
			float64(cpu[mode])/float64(time.Microsecond))
	}
	r.add("agent_rss_idle", "agent RSS idle", "MB", "≤ 25 MB", mb(idle.RSS))
	r.add("agent_rss_load", "agent RSS after load", "MB", "", mb(load.RSS))
	r.add("agent_hwm", "agent peak RSS", "MB", "", mb(load.HWM))
	r.add("failed", "not run or failed", "count", "0", float64(bad))
	if rel := viaAgent.releasedCount(); rel > 0 {
		return fmt.Errorf("the agent released %d executions", rel)
	}
	return nil
}

func w6ModeLabel(mode string) string {
	if mode == "open" {
		return fmt.Sprintf("%d/s", w6Rate)
	}
	return "one at a time"
}

// loop sends n executions of job through d, one at a time when rate is 0 and otherwise
// at rate per second (open loop), and returns their timings, from this program's clock and
// the handler service's records.
func (w6) loop(ctx context.Context, d execDriver, records *handlerClient, job string, n int, rate float64) (w6Run, error) {
	ids := make([]string, n)
	sent := make([]time.Time, n)
	got := make([]time.Time, n)
	ok := make([]bool, n)
	index := make(map[string]int, n)
	for i := range ids {
		ids[i] = newExecID()
		index[ids[i]] = i
	}
	var run w6Run
	if rate == 0 {
		for i := range n {
			sent[i] = time.Now()
			if err := d.start(ids[i], job); err != nil {
				return run, err
			}
			if err := waitEvent(ctx, d, ids[i], func(e driverEvent) {
				if j, known := index[e.id]; known {
					got[j], ok[j] = e.at, e.ok
				}
			}); err != nil {
				return run, err
			}
		}
	} else {
		collected := make(chan error, 1)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			left := n
			for left > 0 {
				select {
				case <-cctx.Done():
					collected <- fmt.Errorf("%d results of %s missing: %w", left, job, cctx.Err())
					return
				case e := <-d.events():
					if j, known := index[e.id]; known && got[j].IsZero() {
						got[j], ok[j] = e.at, e.ok
						left--
					}
				}
			}
			collected <- nil
		}()
		interval := time.Duration(float64(time.Second) / rate)
		t0 := time.Now()
		for i := range n {
			if wait := time.Until(t0.Add(time.Duration(i) * interval)); wait > 0 {
				time.Sleep(wait)
			}
			sent[i] = time.Now()
			if err := d.start(ids[i], job); err != nil {
				cancel()
				<-collected
				return run, err
			}
		}
		timer := time.AfterFunc(30*time.Second, cancel)
		err := <-collected
		timer.Stop()
		if err != nil {
			return run, err
		}
	}

	starts := map[string]int64{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs, err := records.records(ctx, recordFilter{Prefix: job})
		if err != nil {
			return run, fmt.Errorf("read handler records: %w", err)
		}
		for _, rec := range recs {
			if _, seen := starts[rec.ID]; !seen {
				starts[rec.ID] = rec.Start
			}
		}
		if len(starts) >= n || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return run, err
		}
	}
	for i, id := range ids {
		st, seen := starts[id]
		if !seen {
			run.notRun++
			continue
		}
		if !ok[i] {
			run.failed++
		}
		run.sendToStart = append(run.sendToStart, float64(time.Unix(0, st).Sub(sent[i]))/float64(time.Microsecond))
		run.sendToResult = append(run.sendToResult, float64(got[i].Sub(sent[i]))/float64(time.Microsecond))
	}
	return run, nil
}

// waitEvent takes d's events, handing each to note, until the one for id arrives.
func waitEvent(ctx context.Context, d execDriver, id string, note func(driverEvent)) error {
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("no result for execution %s within 30 s", id)
		case e := <-d.events():
			note(e)
			if e.id == id {
				return nil
			}
		}
	}
}

// threadsCPU returns the time a process's threads alive now have spent on a CPU, from
// /proc/<pid>/task/*/schedstat (nanoseconds, where /proc/<pid>/stat counts 10 ms ticks).
// It falls back to /proc/<pid>/stat when schedstat is not available.
func threadsCPU(pid int) time.Duration {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return usageOf(pid).CPU
	}
	var total time.Duration
	read := false
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		total += time.Duration(ns)
		read = true
	}
	if !read {
		return usageOf(pid).CPU
	}
	return total
}

// mb converts bytes to MB (MiB, as the kernel's kB are KiB).
func mb(b int64) float64 { return float64(b) / (1 << 20) }
