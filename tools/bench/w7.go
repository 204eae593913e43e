package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tockhq/tock/controlplane/daemon"
	"github.com/tockhq/tock/controlplane/dispatch"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// w7 measures failover under an open-loop load of manual triggers: a replica killed with
// SIGKILL, an agent killed with SIGKILL while it runs executions, and PostgreSQL restarted.
// Progress is the handler starts in the bench handler service's records; lost and duplicate
// work is read from the database once the backlog has been worked off.
type w7 struct{}

func (w7) ID() string   { return "W7" }
func (w7) Name() string { return "failover: replica kill, agent kill, PostgreSQL restart under load" }

// w7Kind is what a case breaks.
type w7Kind int

const (
	w7ReplicaKill w7Kind = iota // SIGKILL to one of two replicas
	w7AgentKill                 // SIGKILL to one of three agents
	w7PGRestart                 // PostgreSQL stopped (fast) and started again
)

// w7Case is one failover case.
type w7Case struct {
	// Name is the case's short name, Title its description.
	Name, Title string
	Kind        w7Kind
	// Rate is the triggers offered per second; SleepMS how long each handler run sleeps.
	Rate, SleepMS int
	// Replicas and Agents are how many of each run; VictimAgents, for a replica kill, how
	// many of the agents the killed replica owns. Capacity is each agent's.
	Replicas, Agents, VictimAgents, Capacity int
	// Before is how long the load runs before the failure, After how long after it.
	Before, After time.Duration
}

// w7Cases returns the cases of the quick or the full set.
func w7Cases(quick bool) []w7Case {
	if quick {
		return []w7Case{{
			Name: "replica-kill", Title: "SIGKILL to one of two replicas at 200 triggers/s (quick)", Kind: w7ReplicaKill,
			Rate: 200, Replicas: 2, Agents: 3, VictimAgents: 2, Capacity: 4096, Before: 2 * time.Second, After: 3 * time.Second,
		}}
	}
	return []w7Case{
		{
			Name: "replica-kill", Title: "SIGKILL to one of two replicas at 1,000 triggers/s", Kind: w7ReplicaKill,
			Rate: 1000, Replicas: 2, Agents: 3, VictimAgents: 2, Capacity: 4096, Before: 10 * time.Second, After: 20 * time.Second,
		},
		{
			Name: "agent-kill", Title: "SIGKILL to one of three agents running 300 ms handlers at 200 triggers/s", Kind: w7AgentKill,
			Rate: 200, SleepMS: 300, Replicas: 1, Agents: 3, Capacity: 256, Before: 10 * time.Second, After: 20 * time.Second,
		},
		{
			Name: "pg-restart", Title: "PostgreSQL restarted (fast stop, start) at 1,000 triggers/s", Kind: w7PGRestart,
			Rate: 1000, Replicas: 1, Agents: 3, Capacity: 4096, Before: 10 * time.Second, After: 20 * time.Second,
		},
	}
}

const (
	// w7Wait is how long after the load the backlog may take to be worked off: every
	// execution ended (a killed replica's agents move after --replica-ttl; lapsed leases
	// are retried after --lease).
	w7Wait = 60 * time.Second
	// w7WarmUp is the start of the load left out of the before-the-failure control figure.
	w7WarmUp = 2 * time.Second
	// w7Takeover bounds the wait for a killed replica's agents to be taken over.
	w7Takeover = 60 * time.Second
)

func (w w7) Run(ctx context.Context, env *Env) ([]Result, error) {
	cases := w7Cases(env.Quick)
	var names []string
	for _, c := range cases {
		names = append(names, c.Name)
	}
	chosen, err := env.selectCases(names)
	if err != nil {
		return nil, err
	}
	reps := env.Reps
	if env.Quick {
		reps = 1 // a check that the case works, not a measurement
	}
	var out []Result
	for _, wc := range cases {
		if !slices.Contains(chosen, wc.Name) {
			continue
		}
		r := Result{Workload: "W7", Case: wc.Name, Title: "Failover: " + wc.Title}
		var timelines []w7Timeline
		var notes []string
		for rep := range reps {
			o, err := w.runRep(ctx, env, wc, fmt.Sprintf("W7 %s rep %d/%d", wc.Name, rep+1, reps))
			if err != nil {
				return append(out, r), fmt.Errorf("case %s: %w", wc.Name, err)
			}
			o.add(&r, wc)
			timelines = append(timelines, o.timeline)
			notes = o.notes
		}
		if err := writeW7Timeline(env.Out, wc.Name, timelines); err != nil {
			return out, err
		}
		r.Notes = append(w7Notes(wc), notes...)
		if env.Quick {
			r.Notes = append(r.Notes, "Quick run: one repetition of this case only.")
		}
		r.Summary = w7Summary(&r, wc)
		out = append(out, r)
	}
	return out, nil
}

// w7Outcome is what one repetition measured.
type w7Outcome struct {
	trig     []w7Trigger
	ck       w7Check
	load     time.Duration // how long the triggers were offered for (Before + After)
	timeline w7Timeline

	// The figures: stall is the longest slow stretch after the failure, resumed when it
	// ended (from the failure), control the longest slow stretch before it.
	stall, resumed, control time.Duration
	sentToStart             []float64 // ms, first attempts of acknowledged triggers
	takeover                time.Duration
	pgStop, pgDown          time.Duration
	resumedAfterPG          time.Duration
	victimLost              int
	killToLost, killToRetry []float64 // s, the killed agent's attempts
	lostToRetry             []float64 // s
	rejected, leaseExpiries float64

	notes []string
}

// runRep runs one repetition of a case on a cluster of its own.
func (w w7) runRep(ctx context.Context, env *Env, wc w7Case, tag string) (o w7Outcome, err error) {
	cfg := clusterConfig{Name: "w7_" + strings.ReplaceAll(wc.Name, "-", "_"), Capacity: wc.Capacity, NoAgent: true, Replicas: wc.Replicas}
	c, err := env.startTock(ctx, cfg)
	if err != nil {
		return o, err
	}
	defer func() {
		if cerr := c.close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()
	replicaIDs := []string{"bench-replica"}
	for _, r := range c.replicas {
		replicaIDs = append(replicaIDs, r.id)
	}
	agentIDs := w7AgentIDs(wc, replicaIDs)
	agents := map[string]*proc{}
	for _, id := range agentIDs {
		p, err := c.startAgent(ctx, id, wc.Capacity)
		if err != nil {
			return o, err
		}
		agents[id] = p
	}
	if err := w7WaitOwners(ctx, c, agentIDs, replicaIDs); err != nil {
		return o, err
	}
	clients := []tockv1.JobServiceClient{c.jobs}
	for _, r := range c.replicas {
		conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return o, fmt.Errorf("connect to %s: %w", r.id, err)
		}
		defer conn.Close()
		clients = append(clients, tockv1.NewJobServiceClient(conn))
	}
	job := "w7-" + wc.Name
	if _, err := c.jobs.CreateJob(ctx, &tockv1.CreateJobRequest{Job: &tockv1.Job{
		Name: job, Handler: sleepHandler, Service: benchService, Timeout: durationpb.New(30 * time.Second),
		RetryPolicy: &tockv1.RetryPolicy{MaxAttempts: 5, InitialBackoff: durationpb.New(100 * time.Millisecond)},
	}}); err != nil {
		return o, fmt.Errorf("create job: %w", err)
	}

	// What fails, and how to tell the processes that must stay up.
	var victim *proc
	var victimName string
	switch wc.Kind {
	case w7ReplicaKill:
		victim, victimName = c.replicas[len(c.replicas)-1].proc, replicaIDs[len(replicaIDs)-1]
	case w7AgentKill:
		victimName = agentIDs[0]
		victim = agents[victimName]
	}
	flags := []string{fmt.Sprintf("tockd: --store postgres://… --replica-id … (defaults otherwise: --lease %s, --replica-ttl %s)",
		daemon.DefaultLease, daemon.DefaultReplicaTTL) + w7ExtraArgs(env.TockdArgs)}
	flags = append(flags, fmt.Sprintf("tock-agent: --register <%s> --service %s --capacity %d --id %s", replicaIDs[0], benchService,
		wc.Capacity, strings.Join(agentIDs, "|")))
	o.notes = append(o.notes, "Flags: "+strings.Join(flags, "; ")+".")
	if wc.Kind == w7ReplicaKill {
		owners := map[string][]string{}
		for _, a := range agentIDs {
			owners[dispatch.Owner(a, replicaIDs)] = append(owners[dispatch.Owner(a, replicaIDs)], a)
		}
		o.notes = append(o.notes, fmt.Sprintf("Agents owned before the kill: %s %v, %s %v (killed).",
			replicaIDs[0], owners[replicaIDs[0]], victimName, owners[victimName]))
	}

	load := &w7Load{env: env, tag: tag, clients: clients, job: job, sleepMS: wc.SleepMS}
	start := time.Now().Add(200 * time.Millisecond).Truncate(w7Bucket)
	failAt := start.Add(wc.Before)
	env.statusf(tag, "offering %d triggers/s for %s; the failure comes after %s", wc.Rate, wc.Before+wc.After, wc.Before)
	failCtx, cancelFail := context.WithCancel(ctx)
	defer cancelFail()
	var (
		wg       sync.WaitGroup
		failed   time.Time // when the failure was set off
		failErr  error
		pgDownAt time.Time
		pgUpAt   time.Time
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sleepCtx(failCtx, time.Until(failAt)); err != nil {
			return
		}
		failed = time.Now()
		switch wc.Kind {
		case w7ReplicaKill, w7AgentKill:
			env.statusf(tag, "SIGKILL to %s", victimName)
			victim.kill()
			if wc.Kind == w7ReplicaKill {
				o.takeover, failErr = w7WaitTakeover(failCtx, c, agentIDs, replicaIDs[:len(replicaIDs)-1], failed)
			}
		case w7PGRestart:
			env.statusf(tag, "restarting PostgreSQL (fast stop, then start)")
			pgDownAt, pgUpAt, failErr = env.PG.restart(failCtx)
			env.statusf(tag, "PostgreSQL down %s after the signal, accepting connections again %s later",
				pgDownAt.Sub(failed).Round(time.Millisecond), pgUpAt.Sub(pgDownAt).Round(time.Millisecond))
		}
	}()
	o.load = wc.Before + wc.After
	o.trig, err = load.offer(ctx, start, wc.Rate, o.load)
	loadEnd := time.Now()
	wg.Wait()
	if err != nil {
		return o, err
	}
	if failErr != nil {
		return o, fmt.Errorf("failure injection: %w", failErr)
	}
	if failed.IsZero() {
		return o, errors.New("the load ended before the failure was set off")
	}
	if err := w7Alive(c, victim); err != nil {
		return o, err
	}

	// Wait for the backlog: every execution of the job ended.
	db, err := pgx.Connect(ctx, env.PG.url(c.db))
	if err != nil {
		return o, fmt.Errorf("connect to the case's database: %w", err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	deadline := loadEnd.Add(w7Wait)
	lastStatus := time.Time{}
	for {
		var live int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM executions WHERE job = $1 AND state IN ('pending', 'assigned', 'running')`,
			job).Scan(&live); err != nil {
			return o, fmt.Errorf("count unfinished executions: %w", err)
		}
		if live == 0 || time.Now().After(deadline) {
			if live > 0 {
				o.notes = append(o.notes, fmt.Sprintf("%d executions were still unfinished %s after the load (counted as lost).", live, w7Wait))
			}
			break
		}
		if time.Since(lastStatus) >= 2*time.Second {
			env.statusf(tag, "waiting for the backlog: %d executions unfinished", live)
			lastStatus = time.Now()
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return o, err
		}
	}
	if err := w7Alive(c, victim); err != nil {
		return o, err
	}
	execs, err := readW7Executions(ctx, db, job)
	if err != nil {
		return o, err
	}
	recs, err := c.records.records(ctx, recordFilter{Prefix: job})
	if err != nil {
		return o, fmt.Errorf("read the handler's records: %w", err)
	}
	o.ck = checkW7(o.trig, execs, recs)
	o.rejected = c.metricValue(ctx, "tock_results_rejected_total")
	o.leaseExpiries = c.metricValue(ctx, "tock_lease_expiries_total")
	if err := c.saveMetrics(ctx, fmt.Sprintf("W7-%s-tockd-metrics.txt", wc.Name)); err != nil {
		env.statusf(tag, "could not save tockd metrics: %v", err)
	}

	// Progress around the failure.
	n := int(o.load / w7Bucket)
	counts := startBuckets(recs, start, n)
	fb := int(failed.Sub(start) / w7Bucket)
	o.timeline = w7Timeline{counts: counts, failure: fb}
	half := float64(wc.Rate) / 2 * (w7Window * w7Bucket).Seconds()
	from, to := longestSlow(counts, fb, n, w7Window, half)
	o.stall = time.Duration(to-from) * w7Bucket
	if to > from {
		o.resumed = start.Add(time.Duration(to) * w7Bucket).Sub(failed)
	}
	cf, ct := longestSlow(counts, int(w7WarmUp/w7Bucket), fb, w7Window, half)
	o.control = time.Duration(ct-cf) * w7Bucket
	if wc.Kind == w7PGRestart {
		o.pgStop, o.pgDown = pgDownAt.Sub(failed), pgUpAt.Sub(pgDownAt)
		if to > from {
			o.resumedAfterPG = max(start.Add(time.Duration(to)*w7Bucket).Sub(pgUpAt), 0)
		}
	}

	// Latency of first attempts.
	first := map[string]int64{}
	for _, r := range recs {
		if s, ok := first[r.ID]; !ok || r.Start < s {
			first[r.ID] = r.Start
		}
	}
	for _, t := range o.trig {
		if s, ok := first[t.id]; ok && t.id != "" {
			o.sentToStart = append(o.sentToStart, ms(time.Unix(0, s).Sub(t.sent)))
		}
	}

	// The killed agent's attempts: lost when their leases ran out, then retried.
	if wc.Kind == w7AgentKill {
		retryOf := map[string]w7Exec{}
		for _, e := range execs {
			if e.retryOf != "" {
				retryOf[e.retryOf] = e
			}
		}
		for _, e := range execs {
			if e.agent != victimName || e.state != "lost" {
				continue
			}
			o.victimLost++
			o.killToLost = append(o.killToLost, e.finished.Sub(failed).Seconds())
			if r, ok := retryOf[e.id]; ok && !r.started.IsZero() {
				o.killToRetry = append(o.killToRetry, r.started.Sub(failed).Seconds())
				o.lostToRetry = append(o.lostToRetry, r.started.Sub(e.finished).Seconds())
			}
		}
	}
	env.statusf(tag, "stall after the failure %s (before it %s); lost %d, duplicate applied %d; %d attempts, %d handler runs",
		o.stall, o.control, o.ck.lost, o.ck.dupApplied, o.ck.attempts, o.ck.handlerRuns)
	return o, nil
}

// w7ExtraArgs renders -tockd-args for the flags note.
func w7ExtraArgs(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return " " + strings.Join(args, " ")
}

// w7AgentIDs returns the ids of a case's agents. For a replica kill they are chosen so that
// rendezvous hashing over the replicas gives the last replica (the one killed)
// wc.VictimAgents of them and the first the others.
func w7AgentIDs(wc w7Case, replicas []string) []string {
	var ids []string
	if len(replicas) < 2 {
		for i := range wc.Agents {
			ids = append(ids, fmt.Sprintf("w7-agent-%d", i+1))
		}
		return ids
	}
	victim, mine := 0, 0
	for k := 1; len(ids) < wc.Agents; k++ {
		id := fmt.Sprintf("w7-agent-%d", k)
		switch dispatch.Owner(id, replicas) {
		case replicas[len(replicas)-1]:
			if victim < wc.VictimAgents {
				ids, victim = append(ids, id), victim+1
			}
		case replicas[0]:
			if mine < wc.Agents-wc.VictimAgents {
				ids, mine = append(ids, id), mine+1
			}
		}
	}
	return ids
}

// w7WaitOwners waits until every agent is held by the replica rendezvous hashing gives it.
func w7WaitOwners(ctx context.Context, c *tockCluster, agents, replicas []string) error {
	_, err := w7WaitTakeover(ctx, c, agents, replicas, time.Now())
	return err
}

// w7WaitTakeover polls GET /v1/agents (through the first replica) every 50 ms until every
// agent is held by its rendezvous owner among replicas, and returns how long after since
// that was.
func w7WaitTakeover(ctx context.Context, c *tockCluster, agents, replicas []string, since time.Time) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, w7Takeover)
	defer cancel()
	for {
		resp, err := c.agents.ListAgents(ctx, &tockv1.ListAgentsRequest{Service: benchService})
		if err == nil {
			owner := map[string]string{}
			for _, a := range resp.GetAgents() {
				owner[a.GetId()] = a.GetReplica()
			}
			ok := true
			for _, a := range agents {
				ok = ok && owner[a] == dispatch.Owner(a, replicas)
			}
			if ok {
				return time.Since(since), nil
			}
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return 0, fmt.Errorf("agents %v not held by their owners among %v after %s: %w", agents, replicas, w7Takeover, err)
		}
	}
}

// w7Alive returns an error naming a process of the cluster, other than the one killed on
// purpose, that has exited.
func w7Alive(c *tockCluster, victim *proc) error {
	procs := append(append([]*proc{c.tockd, c.agent, c.handler}, c.more...), c.replicaProcs()...)
	var errs []error
	for _, p := range procs {
		if p != nil && p != victim && p.exited() {
			errs = append(errs, p.failure(fmt.Errorf("exited during the run: %v", p.err)))
		}
	}
	return errors.Join(errs...)
}

// add appends the repetition's figures to r.
func (o *w7Outcome) add(r *Result, wc w7Case) {
	var acked, failedCalls, failedTriggers, retriedCalls, notSent int
	for _, t := range o.trig {
		switch {
		case t.notSent:
			notSent++
		case t.id != "":
			acked++
		default:
			failedTriggers++
		}
		failedCalls += t.failed
		if t.calls > 1 {
			retriedCalls++
		}
	}
	stallTarget, lossTarget := "", "0"
	if wc.Kind == w7ReplicaKill {
		stallTarget = "≤ 3 s"
	}
	r.add("offered", "triggers offered", "/s", "", float64(len(o.trig))/o.load.Seconds())
	r.add("acked", "triggers acknowledged", "/s", "", float64(acked)/o.load.Seconds())
	r.add("stall", "progress stall after the failure", "s", stallTarget, o.stall.Seconds())
	r.add("resumed", "progress back to half rate, after the failure", "s", "", o.resumed.Seconds())
	r.add("control", "longest slow stretch before the failure", "s", "", o.control.Seconds())
	switch wc.Kind {
	case w7ReplicaKill:
		r.add("takeover", "killed replica's agents taken over after", "s", "", o.takeover.Seconds())
	case w7AgentKill:
		r.add("victim_lost", "killed agent's attempts lost", "count", "", float64(o.victimLost))
		kl, kr, lr := summarize(o.killToLost), summarize(o.killToRetry), summarize(o.lostToRetry)
		r.add("kill_lost_max", "kill → LOST (lease expiry), max", "s", "", kl.Max)
		r.add("kill_retry_p50", "kill → retry start p50", "s", "", kr.P50)
		r.add("kill_retry_max", "kill → retry start max", "s", "≤ 10 s", kr.Max)
		r.add("lost_retry_max", "LOST → retry start max", "s", "", lr.Max)
	case w7PGRestart:
		r.add("pg_stop", "PostgreSQL fast stop took", "s", "", o.pgStop.Seconds())
		r.add("pg_down", "PostgreSQL down (exited → accepting)", "s", "", o.pgDown.Seconds())
		r.add("resumed_after_pg", "progress back to half rate, after PostgreSQL accepted connections", "s", "", o.resumedAfterPG.Seconds())
	}
	r.addDist("trigger_start", "trigger→start", "ms", [3]string{}, o.sentToStart)
	r.add("lost", "lost executions", "count", lossTarget, float64(o.ck.lost))
	r.add("dup_applied", "duplicate applied results", "count", "0", float64(o.ck.dupApplied))
	r.add("failed_calls", "trigger calls failed", "count", "", float64(failedCalls))
	if wc.Replicas > 1 {
		r.add("retried_calls", "triggers sent again to the other replica", "count", "", float64(retriedCalls))
	}
	r.add("failed_triggers", "triggers without an execution (client errors)", "count", "", float64(failedTriggers))
	r.add("not_sent", "triggers not sent (2,000 calls in flight)", "count", "", float64(notSent))
	r.add("unacked", "executions created by calls that reported an error", "count", "", float64(o.ck.unacked))
	r.add("doubled", "triggers that created two executions (a retried call)", "count", "", float64(o.ck.doubled))
	r.add("attempts", "attempts recorded", "count", "", float64(o.ck.attempts))
	r.add("handler_runs", "handler runs", "count", "", float64(o.ck.handlerRuns))
	r.add("retried", "retried attempts (attempt > 1)", "count", "", float64(o.ck.retried))
	r.add("lost_attempts", "attempts ended LOST", "count", "", float64(o.ck.lostAttempts))
	r.add("rerun_attempts", "attempts the handler ran twice", "count", "0", float64(o.ck.rerunAttempts))
	r.add("rerun_chains", "executions the handler ran more than once (retries included)", "count", "", float64(o.ck.rerunChains))
	r.add("rejected", "results rejected (tock_results_rejected_total)", "count", "", o.rejected)
	r.add("lease_expiries", "lease expiries (tock_lease_expiries_total)", "count", "", o.leaseExpiries)
}

// w7Notes describes what a case measured.
func w7Notes(wc w7Case) []string {
	notes := []string{
		fmt.Sprintf("Load: open loop, %d manual triggers per second (gRPC TriggerJob, each with the payload {\"ms\": %d, \"seq\": i}) of one job "+
			"whose handler `sleep` notes its start and sleeps ms; %s before the failure and %s after; the job's retry policy: 5 attempts, "+
			"100 ms initial backoff. Each repetition is a new cluster on a new database.", wc.Rate, wc.SleepMS, wc.Before, wc.After),
		fmt.Sprintf("Progress: handler starts (the handler service's records) in %s buckets. A bucket is slow when the %s ending with it "+
			"held fewer starts than half the offered rate would give. The progress stall is the longest run of consecutive slow buckets "+
			"from the failure's bucket to the end of the load (a full stop of G seconds followed by a catch-up reads as G − %s to G); 'back to half "+
			"rate' is from the failure to the end of that run; the same figure over the load before the failure (after a %s warm-up) "+
			"is the noise floor. The starts per bucket of every repetition are in W7-%s-timeline.csv.",
			w7Bucket, w7Window*w7Bucket, w7Window*w7Bucket/2, w7WarmUp, wc.Name),
		fmt.Sprintf("Lost and duplicate: read from the database once no execution of the job was pending, assigned or running (at most %s "+
			"after the load). Every first attempt and its retries (retry_of) form one execution; lost: an execution without a SUCCEEDED "+
			"attempt, or an acknowledged one missing; duplicate applied results: an execution with more than one SUCCEEDED attempt. The "+
			"handler's runs are counted per attempt (an attempt run twice means the same assignment ran twice) and per execution "+
			"(a retry of a lost attempt that had started runs the handler again: at-least-once).", w7Wait),
	}
	switch wc.Kind {
	case w7ReplicaKill:
		notes = append(notes, "Agents' capacity 4,096 (at 256, dispatch went in waves of the agents' capacity: a slot stays taken until "+
			"the result is committed, which lagged by seconds under this load).")
		notes = append(notes, "Replica kill: two replicas, three agents registered with the first (as they would be through a load balancer "+
			"that stopped sending to the dead replica); agent ids chosen so that the killed replica owns two of them. Triggers alternate "+
			"between the replicas' gRPC APIs; every trigger carries the request id seq-i, and a call that fails is sent once more to the "+
			"other replica (counted) with it; triggers whose first call committed although it reported an error show as executions created by calls that reported an "+
			"error, and would show as triggers that created two executions if the request id did not hold. Takeover: from the SIGKILL until GET /v1/agents shows the killed replica's agents "+
			"held by the survivor (polled every 50 ms).")
	case w7AgentKill:
		notes = append(notes, "Agent kill: one replica, three agents sharing one handler service; the first agent gets SIGKILL. The rate "+
			"(200/s, about 60 executions in flight) is below what saturated the development machine, so that the retries are not "+
			"queued behind a backlog. Its attempts "+
			"end LOST when their lease runs out (tockd's default --lease "+daemon.DefaultLease.String()+"; BENCHMARKS.md's target: retried within 10 s), and are retried on the "+
			"others after the job's 100 ms backoff. kill → LOST is the attempt's finish time in the database; kill → retry start "+
			"the retry's start time; both on this machine's clock.")
	case w7PGRestart:
		notes = append(notes, "PostgreSQL restart: the run's server gets SIGINT (fast shutdown: sessions ended, open transactions rolled "+
			"back, a shutdown checkpoint written) and is started again on the same port as soon as it has exited. Trigger calls that "+
			"fail meanwhile are client errors, not lost work, and are not sent again; the progress stall is counted from the signal.")
	}
	return notes
}

// w7Summary is the case's summary line.
func w7Summary(r *Result, wc w7Case) string {
	med := func(k string) string {
		m := r.find(k)
		if m == nil {
			return "–"
		}
		return formatValue(r.medianOf(k), m.Unit)
	}
	total := func(k string) string { return formatValue(r.totalOf(k), "count") }
	s := fmt.Sprintf("%s offered, %s acknowledged; progress stall after the failure %s (before it %s)", med("offered"), med("acked"),
		med("stall"), med("control"))
	switch wc.Kind {
	case w7ReplicaKill:
		s += fmt.Sprintf(" (target ≤ 3 s); agents taken over after %s; attempts lost to lease expiry %s", med("takeover"), med("lost_attempts"))
	case w7AgentKill:
		s += fmt.Sprintf("; killed agent's attempts lost %s, LOST after kill max %s, retried after kill p50 %s, max %s (target ≤ 10 s; --lease %s)",
			med("victim_lost"), med("kill_lost_max"), med("kill_retry_p50"), med("kill_retry_max"), daemon.DefaultLease)
	case w7PGRestart:
		s += fmt.Sprintf("; PostgreSQL down %s, progress back %s after it accepted connections; trigger errors %s", med("pg_down"),
			med("resumed_after_pg"), med("failed_triggers"))
	}
	if math.IsNaN(r.totalOf("lost")) {
		return s
	}
	return s + fmt.Sprintf("; in all repetitions: lost %s, duplicate applied %s, attempts run twice %s, executions run again by a retry %s, "+
		"late results rejected %s", total("lost"), total("dup_applied"), total("rerun_attempts"), total("rerun_chains"), total("rejected"))
}
