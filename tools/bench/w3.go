package main

import (
	"context"
	"fmt"
	"time"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// w3 measures idle latency: one manual trigger every 100 ms, open loop (each trigger is sent
// on its tick whether or not the one before has run), through tockd, the agent and the Go
// SDK, on an otherwise idle cluster.
type w3 struct{}

func (w3) ID() string   { return "W3" }
func (w3) Name() string { return "idle latency: one manual trigger every 100 ms" }

const (
	w3Job      = "w3-idle"
	w3Interval = 100 * time.Millisecond
)

func (w w3) Run(ctx context.Context, env *Env) ([]Result, error) {
	n, warm := 600, 10
	if env.Quick {
		n, warm = 30, 5
	}
	c, err := env.startTock(ctx, clusterConfig{Name: "w3", Capacity: 64})
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.close(context.WithoutCancel(ctx)) }()
	if _, err := c.jobs.CreateJob(ctx, &tockv1.CreateJobRequest{Job: noopJob(w3Job, "")}); err != nil {
		return nil, fmt.Errorf("create job: %w", err)
	}

	r := Result{Workload: "W3", Case: "idle", Title: fmt.Sprintf("Idle latency: %d manual triggers, one every %s", n, w3Interval)}
	for rep := range quickReps(env) {
		tag := env.repTag("W3", "", rep)
		env.statusf(tag, "warm-up: %d triggers", warm)
		if _, err := w.triggers(ctx, c, tag, warm); err != nil {
			return nil, err
		}
		cpu0, _ := c.usage()
		t0 := time.Now()
		trig, err := w.triggers(ctx, c, tag, n)
		if err != nil {
			return nil, err
		}
		cpu1, _ := c.usage()
		wall := time.Since(t0)

		recs, err := c.records.records(ctx, recordFilter{Prefix: w3Job})
		if err != nil {
			return nil, fmt.Errorf("read handler runs: %w", err)
		}
		m := matchRuns(trig, recs)
		missing, dup, failed := m.notRun, m.twice, m.failed
		var sentToStart, createdToStart, call []float64
		for i, t := range trig {
			if t.err != nil {
				continue
			}
			call = append(call, ms(t.returned.Sub(t.sent)))
			if start := m.first[i]; !start.IsZero() {
				sentToStart = append(sentToStart, ms(start.Sub(t.sent)))
				createdToStart = append(createdToStart, ms(start.Sub(t.created)))
			}
		}
		r.addDist("trigger_start", "trigger→start", "ms", [3]string{"≤ 2 ms", "≤ 10 ms", ""}, sentToStart)
		r.addDist("created_start", "created→start", "ms", [3]string{}, createdToStart)
		cs := summarize(call)
		r.add("call_p50", "trigger call p50", "ms", "", cs.P50)
		r.add("call_p99", "trigger call p99", "ms", "", cs.P99)
		r.add("missing", "not run", "count", "0", float64(missing))
		r.add("duplicate", "run twice", "count", "0", float64(dup))
		r.add("failed", "trigger errors", "count", "0", float64(failed))
		r.add("tockd_cpu", "tockd CPU", "%", "", 100*(cpu1.CPU-cpu0.CPU).Seconds()/wall.Seconds())
		s := summarize(sentToStart)
		env.statusf(tag, "trigger→start p50 %s p99 %s max %s; %d not run, %d twice, %d errors",
			formatValue(s.P50, "ms"), formatValue(s.P99, "ms"), formatValue(s.Max, "ms"), missing, dup, failed)
		if err := c.alive(); err != nil {
			return nil, err
		}
	}
	_, agentUse := c.usage()
	r.Notes = append(r.Notes,
		"trigger→start: when the bench handler started (time.Now() at the top of the handler, in the handler service's "+
			"process) minus when this program sent the TriggerJob call (gRPC). It includes the trigger's own commit.",
		"created→start: the same handler start minus the execution's createTime (the database clock when the trigger's "+
			"transaction ran). Both clocks are this machine's.",
		fmt.Sprintf("%d warm-up triggers before each repetition are not counted. tock-agent peak RSS %.1f MB.", warm, float64(agentUse.HWM)/(1<<20)))
	med := func(k string) string { return formatValue(r.medianOf(k), r.find(k).Unit) }
	total := func(k string) string { return formatValue(r.totalOf(k), "count") }
	r.Summary = fmt.Sprintf("trigger→start p50 %s, p99 %s, max %s (targets p50 ≤ 2 ms, p99 ≤ 10 ms); created→start p50 %s; "+
		"in all repetitions: not run %s, run twice %s, trigger errors %s", med("trigger_start_p50"), med("trigger_start_p99"),
		med("trigger_start_max"), med("created_start_p50"), total("missing"), total("duplicate"), total("failed"))
	return []Result{r}, nil
}

// triggers triggers w3Job n times, one every w3Interval (open loop, as W2 does), and waits
// until the handler has run for each or 30 s have passed without a new run.
func (w3) triggers(ctx context.Context, c *tockCluster, tag string, n int) ([]trigger, error) {
	from := time.Now()
	trig, err := c.openLoop(ctx, tag, w3Job, float64(time.Second/w3Interval), n, 0)
	if err != nil {
		return nil, err
	}
	if _, _, err := c.awaitRuns(ctx, tag, recordFilter{Prefix: w3Job, StartFrom: from}, succeeded(trig), 30*time.Second); err != nil {
		return nil, err
	}
	return trig, nil
}
