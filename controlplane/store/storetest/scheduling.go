package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// This file covers the scheduling policies: what jobs and executions keep of them, the live
// executions a plan is told of, replacing them, backfills, dependencies and the control
// plane's own timeouts.

// policyJob is newJob with every scheduling policy set.
func policyJob(name string) store.Job {
	job := newJob(name)
	job.Schedule.Jitter = 3 * time.Second
	job.Schedule.SpringForward = store.SpringForwardSkip
	job.Schedule.FallBack = store.FallBackBoth
	job.Retry.Jitter = 0.25
	job.Misfire = store.MisfirePolicy{Action: store.MisfireCatchUp, MaxCatchUp: 4, Grace: 2 * time.Second, Window: time.Hour}
	job.Overlap = store.OverlapPolicy{Action: store.OverlapAllowN, MaxConcurrent: 2}
	job.ScheduleToStartTimeout = 10 * time.Second
	job.ScheduleToCloseTimeout = time.Hour
	return job
}

// succeed claims the execution, and it alone, for an agent and reports it SUCCEEDED with
// result.
func (b *bundle) succeed(t *testing.T, e store.Execution, result string) store.CompletionOutcome {
	t.Helper()
	claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
		Handlers: []string{e.Handler},
		Limit:    1000,
		Lease:    time.Minute,
		Pick: func([]store.Execution) []store.Assignment {
			return []store.Assignment{{ExecutionID: e.ID, AgentID: "agent-1"}}
		},
	})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, e.ID, claimed[0].ID)
	out := b.complete(t, store.Completion{ExecRef: ref(claimed[0]), State: store.ExecSucceeded,
		Result: []byte(result), ResultContentType: "application/json"}, mustNotRetry(t))
	require.True(t, out.Applied, out.Reason)
	return out
}

// onlyExec returns the one execution of a job.
func (b *bundle) onlyExec(t *testing.T, job string) store.Execution {
	t.Helper()
	execs := b.listExecs(t, job)
	require.Len(t, execs, 1, "executions of %s", job)
	return execs[0]
}

var schedulingTests = []test{
	{"JobPoliciesKept", func(t *testing.T, b *bundle) {
		b.createJob(t, newJob("upstream"))
		job := policyJob("policies")
		job.DependsOn = []string{"upstream"}
		created := b.createJob(t, job)
		require.Equal(t, job.Misfire, created.Misfire)
		require.Equal(t, job.Overlap, created.Overlap)
		require.Equal(t, job.ScheduleToStartTimeout, created.ScheduleToStartTimeout)
		require.Equal(t, job.ScheduleToCloseTimeout, created.ScheduleToCloseTimeout)
		require.Equal(t, []string{"upstream"}, created.DependsOn)
		require.Equal(t, job.Schedule, created.Schedule)
		require.Equal(t, job.Retry, created.Retry)
		got, err := b.st.GetJob(b.ctx, "policies")
		require.NoError(t, err)
		require.Equal(t, created, got)

		updated, err := b.st.UpdateJob(b.ctx, "policies", func(j *store.Job) error {
			j.Misfire = store.MisfirePolicy{}
			j.Overlap = store.OverlapPolicy{Action: store.OverlapForbid}
			j.ScheduleToStartTimeout, j.ScheduleToCloseTimeout = 0, time.Minute
			j.DependsOn = nil
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, store.MisfirePolicy{}, updated.Misfire)
		require.Equal(t, store.OverlapPolicy{Action: store.OverlapForbid}, updated.Overlap)
		require.Zero(t, updated.ScheduleToStartTimeout)
		require.Equal(t, time.Minute, updated.ScheduleToCloseTimeout)
		require.Nil(t, updated.DependsOn)
	}},
	{"ExecutionPolicyFieldsKept", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		now := b.now(t)
		e := b.createExec(t, job, func(e *store.Execution) {
			e.NotBefore = now.Add(time.Minute)
			e.ScheduleToStartTimeout = 30 * time.Second
			e.CloseDeadline = now.Add(time.Hour)
			e.Upstream = []store.UpstreamResult{{Job: "a", ExecutionID: "a-1", Output: []byte(`{"n":1}`), ContentType: "application/json"}}
			e.Trigger = store.TriggerDependency
		})
		requireTime(t, now.Add(time.Minute+30*time.Second), e.StartDeadline, "start deadline")
		requireTime(t, now.Add(time.Hour), e.CloseDeadline, "close deadline")
		require.Equal(t, store.TriggerDependency, e.Trigger)
		require.Equal(t, []string{"a-1"}, e.UpstreamIDs())
		require.Equal(t, e, b.get(t, e.ID))

		plain := b.createExec(t, job, nil)
		require.Zero(t, plain.StartDeadline, "no schedule-to-start timeout, no deadline")
		require.Zero(t, plain.CloseDeadline)
		require.Nil(t, plain.Upstream)
	}},
	{"PlanToldOfLiveExecutions", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "busy", -time.Second)
		done := b.claimOne(t, job, "agent-1", time.Minute)
		b.complete(t, store.Completion{ExecRef: ref(done), State: store.ExecSucceeded}, nil)
		b.claimOne(t, job, "agent-1", time.Minute) // assigned
		b.createExec(t, job, nil)                  // pending
		idle := b.dueJob(t, "idle", -time.Second)
		seen := map[string]int{}
		_, err := b.st.FireDueJobs(b.ctx, store.FireDueParams{Limit: 10, Plan: func(d store.DueJob, _ time.Time) store.FirePlan {
			seen[d.Name] = d.Live
			return store.FirePlan{}
		}})
		require.NoError(t, err)
		require.Equal(t, map[string]int{job.Name: 2, idle.Name: 0}, seen)
	}},
	{"ReplaceCancelsLiveExecutions", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "replaced", -time.Second)
		running := b.claimOne(t, job, "agent-1", time.Minute)
		pending := b.createExec(t, job, nil)
		fires := b.fire(t, 10, 0, func(j store.Job, _ time.Time) store.FirePlan {
			p := dispatched(j, j.NextFireAt)
			p.Replace = true
			return store.FirePlan{Fires: []store.PlannedFire{p}}
		})
		require.Len(t, fires, 1)
		got := b.get(t, pending.ID)
		require.Equal(t, store.ExecCancelled, got.State)
		require.Equal(t, "Cancelled", got.Error.Kind)
		require.Contains(t, got.Error.Message, "replaced")
		got = b.get(t, running.ID)
		require.Equal(t, store.ExecAssigned, got.State, "its agent is asked to cancel it")
		require.True(t, got.CancelRequested)
		refs, err := b.st.CancelRequested(b.ctx, []string{"agent-1"})
		require.NoError(t, err)
		require.Equal(t, []store.ExecRef{ref(running)}, refs)
		require.Equal(t, store.ExecPending, b.get(t, fires[0].ExecutionID).State, "the new fire runs")
	}},
	{"Backfill", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "history", time.Hour)
		live := b.createExec(t, job, nil)
		now := b.now(t)
		t1, t2 := now.Add(-2*time.Hour).Truncate(time.Second), now.Add(-time.Hour).Truncate(time.Second)
		first, err := b.st.Backfill(b.ctx, store.BackfillParams{Job: job.Name, Plan: func(d store.DueJob, _ time.Time) store.FirePlan {
			require.Equal(t, 1, d.Live)
			e := dispatched(d.Job, t1)
			e.Execution.Trigger = store.TriggerBackfill
			return store.FirePlan{Fires: []store.PlannedFire{e}, NextFireAt: now.Add(48 * time.Hour)}
		}})
		require.NoError(t, err)
		require.Len(t, first, 1)
		require.Equal(t, store.TriggerBackfill, first[0].Execution.Trigger)
		second, err := b.st.Backfill(b.ctx, store.BackfillParams{Job: job.Name, Plan: func(d store.DueJob, _ time.Time) store.FirePlan {
			require.Equal(t, 2, d.Live)
			return store.FirePlan{Fires: []store.PlannedFire{
				dispatched(d.Job, t1), // recorded already: left as it was
				{NominalTime: t2, Outcome: store.FireSkippedOverlap},
			}}
		}})
		require.NoError(t, err)
		require.Len(t, second, 1)
		require.Equal(t, store.FireSkippedOverlap, second[0].Outcome)
		require.Len(t, b.listFires(t, job.Name), 2)
		require.Len(t, b.listExecs(t, job.Name), 2, "the live one and the backfilled one")
		got, err := b.st.GetJob(b.ctx, job.Name)
		require.NoError(t, err)
		require.Equal(t, job.NextFireAt, got.NextFireAt, "a backfill does not move the schedule")
		require.Equal(t, store.ExecPending, b.get(t, live.ID).State)

		_, err = b.st.Backfill(b.ctx, store.BackfillParams{Job: "nope", Plan: func(store.DueJob, time.Time) store.FirePlan { return store.FirePlan{} }})
		require.ErrorIs(t, err, store.ErrNotFound)
	}},
	{"DependencyOnMissingJob", func(t *testing.T, b *bundle) {
		job := newJob("orphan")
		job.DependsOn = []string{"ghost"}
		_, err := b.st.CreateJob(b.ctx, job)
		var dep *store.DependencyError
		require.True(t, errors.As(err, &dep), "%v", err)
		require.Equal(t, "ghost", dep.Missing)
		require.ErrorIs(t, err, store.ErrDependency)
		_, err = b.st.GetJob(b.ctx, "orphan")
		require.ErrorIs(t, err, store.ErrNotFound, "nothing was stored")
	}},
	{"DependencyCycles", func(t *testing.T, b *bundle) {
		b.createJob(t, newJob("a"))
		bj := newJob("b")
		bj.DependsOn = []string{"a"}
		b.createJob(t, bj)
		cj := newJob("c")
		cj.DependsOn = []string{"b"}
		b.createJob(t, cj)
		_, err := b.st.UpdateJob(b.ctx, "a", func(j *store.Job) error {
			j.DependsOn = []string{"c"}
			return nil
		})
		var dep *store.DependencyError
		require.True(t, errors.As(err, &dep), "%v", err)
		require.Equal(t, []string{"a", "c", "b", "a"}, dep.Cycle)
		got, err := b.st.GetJob(b.ctx, "a")
		require.NoError(t, err)
		require.Nil(t, got.DependsOn, "the update was not applied")

		_, err = b.st.UpdateJob(b.ctx, "c", func(j *store.Job) error {
			j.DependsOn = []string{"b", "c"}
			return nil
		})
		require.True(t, errors.As(err, &dep), "%v", err)
		require.Equal(t, []string{"c", "c"}, dep.Cycle)

		// A diamond is not a cycle.
		dj := newJob("d")
		dj.DependsOn = []string{"b", "c", "a"}
		b.createJob(t, dj)
	}},
	{"ThreeJobChain", func(t *testing.T, b *bundle) {
		b.createJob(t, newJob("extract"))
		transform := newJob("transform")
		transform.Schedule, transform.DependsOn = nil, []string{"extract"}
		transform.ScheduleToCloseTimeout = time.Hour
		b.createJob(t, transform)
		load := newJob("load")
		load.Schedule, load.DependsOn = nil, []string{"transform"}
		b.createJob(t, load)

		nominal := b.now(t).Add(-time.Minute).Truncate(time.Second)
		first := b.createExec(t, newJob("extract"), func(e *store.Execution) { e.NominalTime = nominal })
		out := b.succeed(t, first, `{"rows":3}`)

		second := b.onlyExec(t, "transform")
		require.Equal(t, store.TriggerDependency, second.Trigger)
		requireTime(t, nominal, second.NominalTime, "the upstream's nominal time")
		require.Equal(t, []store.UpstreamResult{{Job: "extract", ExecutionID: first.ID, Output: []byte(`{"rows":3}`), ContentType: "application/json"}}, second.Upstream)
		requireTime(t, second.CreatedAt.Add(time.Hour), second.CloseDeadline, "its schedule-to-close timeout, from when it was triggered")
		fires := b.listFires(t, "transform")
		require.Len(t, fires, 1)
		require.Equal(t, store.FireDispatched, fires[0].Outcome)
		require.Equal(t, second.ID, fires[0].ExecutionID)

		// A repeated result changes nothing.
		again := b.complete(t, store.Completion{ExecRef: ref(out.Execution), State: store.ExecSucceeded}, nil)
		require.False(t, again.Applied)
		require.Len(t, b.listExecs(t, "transform"), 1)
		require.Empty(t, b.listExecs(t, "load"), "load waits for transform")

		b.succeed(t, second, `{"rows":2}`)
		third := b.onlyExec(t, "load")
		requireTime(t, nominal, third.NominalTime, "the chain keeps the nominal time")
		require.Equal(t, []string{second.ID}, third.UpstreamIDs())
		require.Equal(t, []byte(`{"rows":2}`), third.Upstream[0].Output)
	}},
	{"DependencyWaitsForEveryUpstream", func(t *testing.T, b *bundle) {
		b.createJob(t, newJob("left"))
		b.createJob(t, newJob("right"))
		join := newJob("join")
		join.Schedule, join.DependsOn = nil, []string{"right", "left"}
		b.createJob(t, join)
		nominal := b.now(t).Truncate(time.Second)
		l := b.createExec(t, newJob("left"), func(e *store.Execution) { e.NominalTime = nominal })
		b.succeed(t, l, `"l"`)
		other := b.createExec(t, newJob("right"), func(e *store.Execution) { e.NominalTime = nominal.Add(-time.Hour) })
		b.succeed(t, other, `"old"`)
		require.Empty(t, b.listExecs(t, "join"), "right has not succeeded for this nominal time")

		r := b.createExec(t, newJob("right"), func(e *store.Execution) { e.NominalTime = nominal })
		b.succeed(t, r, `"r"`)
		got := b.onlyExec(t, "join")
		require.Equal(t, []string{r.ID, l.ID}, got.UpstreamIDs(), "in depends_on order")
	}},
	{"DependentPausedOrOverlapping", func(t *testing.T, b *bundle) {
		b.createJob(t, newJob("up"))
		paused := newJob("paused")
		paused.Schedule, paused.DependsOn, paused.Paused = nil, []string{"up"}, true
		b.createJob(t, paused)
		busy := newJob("busy")
		busy.Schedule, busy.DependsOn = nil, []string{"up"}
		busy.Overlap = store.OverlapPolicy{Action: store.OverlapForbid}
		busy = b.createJob(t, busy)
		b.createExec(t, busy, nil)

		nominal := b.now(t).Truncate(time.Second)
		b.succeed(t, b.createExec(t, newJob("up"), func(e *store.Execution) { e.NominalTime = nominal }), `1`)
		fires := b.listFires(t, "paused")
		require.Len(t, fires, 1)
		require.Equal(t, store.FireSkippedPaused, fires[0].Outcome)
		fires = b.listFires(t, "busy")
		require.Len(t, fires, 1)
		require.Equal(t, store.FireSkippedOverlap, fires[0].Outcome)
		require.Len(t, b.listExecs(t, "busy"), 1)
	}},
	{"RetryKeepsDeadlinesAndUpstream", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("flaky"))
		now := b.now(t)
		up := []store.UpstreamResult{{Job: "a", ExecutionID: "a-1"}}
		b.createExec(t, job, func(e *store.Execution) {
			e.ScheduleToStartTimeout = time.Minute
			e.CloseDeadline = now.Add(time.Hour)
			e.Upstream = up
		})
		e := b.claim(t, "agent-1", 1, time.Minute, job.Handler)[0]
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecFailed, Error: &store.ExecError{Retryable: true}}, retryAfter(time.Second))
		require.NotEmpty(t, out.RetryID)
		r := b.get(t, out.RetryID)
		require.Equal(t, time.Minute, r.ScheduleToStartTimeout)
		requireTime(t, r.NotBefore.Add(time.Minute), r.StartDeadline, "from the retry's own not-before")
		requireTime(t, now.Add(time.Hour), r.CloseDeadline, "the fire's deadline")
		require.Equal(t, up, r.Upstream)
	}},
	{"ScheduleToStartTimeout", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("unclaimed"))
		now := b.now(t)
		// Due long ago (a fire caught up late): the wait counts from its creation.
		late := b.createExec(t, job, func(e *store.Execution) {
			e.NotBefore, e.ScheduleToStartTimeout = now.Add(-time.Hour), 50*time.Millisecond
		})
		require.False(t, late.StartDeadline.Before(late.CreatedAt.Add(50*time.Millisecond)))
		inTime := b.createExec(t, job, func(e *store.Execution) {
			e.NotBefore, e.ScheduleToStartTimeout = now, time.Hour
		})
		// Once an agent took it, the execution is no longer waiting to start, even when it
		// is handed back.
		taken := b.createExec(t, job, func(e *store.Execution) {
			e.NotBefore, e.ScheduleToStartTimeout = now.Add(-time.Minute), 50*time.Millisecond
			e.Priority = 100
		})
		claimed := b.claim(t, "agent-1", 1, time.Minute, job.Handler)
		require.Equal(t, []string{taken.ID}, ids(claimed))
		require.NoError(t, b.st.ReleaseExecutions(b.ctx, []store.ExecRef{ref(claimed[0])}))

		b.pass(t, 100*time.Millisecond)
		expired, err := b.st.ExpireDeadlines(b.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []string{late.ID}, ids(expired))
		got := b.get(t, late.ID)
		require.Equal(t, store.ExecTimedOut, got.State)
		require.Equal(t, store.KindScheduleToStartTimeout, got.Error.Kind)
		require.False(t, got.FinishedAt.IsZero())
		require.Equal(t, store.ExecPending, b.get(t, inTime.ID).State)
		require.Equal(t, store.ExecPending, b.get(t, taken.ID).State)
		require.Len(t, b.listExecs(t, job.Name), 3, "not retried")
	}},
	{"ScheduleToCloseTimeout", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("overall"))
		now := b.now(t)
		pending := b.createExec(t, job, func(e *store.Execution) { e.CloseDeadline = now.Add(-time.Second); e.NotBefore = now.Add(time.Hour) })
		b.createExec(t, job, func(e *store.Execution) { e.CloseDeadline = now.Add(-time.Second); e.Priority = 10 })
		running := b.claim(t, "agent-1", 1, time.Minute, job.Handler)[0]
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(running)}, time.Time{}))
		b.createExec(t, job, func(e *store.Execution) { e.CloseDeadline = now.Add(-time.Second); e.Priority = 5 })
		succeeding := b.claim(t, "agent-1", 1, time.Minute, job.Handler)[0]
		b.createExec(t, job, func(e *store.Execution) { e.CloseDeadline = now.Add(-time.Second); e.Priority = 1 })
		released := b.claim(t, "agent-1", 1, time.Minute, job.Handler)[0]

		expired, err := b.st.ExpireDeadlines(b.ctx, 10)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{pending.ID, running.ID, succeeding.ID, released.ID}, ids(expired))
		again, err := b.st.ExpireDeadlines(b.ctx, 10)
		require.NoError(t, err)
		require.Empty(t, again, "flagged once")

		got := b.get(t, pending.ID)
		require.Equal(t, store.ExecTimedOut, got.State)
		require.Equal(t, store.KindScheduleToCloseTimeout, got.Error.Kind)
		got = b.get(t, running.ID)
		require.Equal(t, store.ExecRunning, got.State, "its agent cancels the handler")
		require.True(t, got.CancelRequested)
		refs, err := b.st.CancelRequested(b.ctx, []string{"agent-1"})
		require.NoError(t, err)
		require.ElementsMatch(t, []store.ExecRef{ref(running), ref(succeeding), ref(released)}, refs)

		// The handler, cancelled, reports a failure: the execution timed out, and is not
		// retried.
		out := b.complete(t, store.Completion{ExecRef: ref(running), State: store.ExecCancelled, Error: &store.ExecError{Message: "context canceled"}}, mustNotRetry(t))
		require.True(t, out.Applied)
		require.Equal(t, store.ExecTimedOut, out.Execution.State)
		require.Equal(t, store.KindScheduleToCloseTimeout, out.Execution.Error.Kind)
		require.Empty(t, out.RetryID)
		// A handler that finished anyway keeps its success.
		out = b.complete(t, store.Completion{ExecRef: ref(succeeding), State: store.ExecSucceeded}, mustNotRetry(t))
		require.Equal(t, store.ExecSucceeded, out.Execution.State)
		// An agent that hands it back ends it too.
		require.NoError(t, b.st.ReleaseExecutions(b.ctx, []store.ExecRef{ref(released)}))
		got = b.get(t, released.ID)
		require.Equal(t, store.ExecTimedOut, got.State)
		require.Equal(t, store.KindScheduleToCloseTimeout, got.Error.Kind)
	}},
	{"SaturatedAgentsTakeHighestPriorityFirst", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("mixed"))
		now := b.now(t)
		mk := func(priority int) store.Execution {
			return b.createExec(t, job, func(e *store.Execution) { e.Priority, e.NotBefore = priority, now.Add(-time.Second) })
		}
		low, high, mid := mk(-5), mk(500), mk(0)
		var order []string
		for range 3 {
			// One free slot at a time, as when every agent is busy but one.
			claimed := b.claim(t, "agent-1", 1, time.Minute, job.Handler)
			require.Len(t, claimed, 1)
			order = append(order, claimed[0].ID)
		}
		require.Equal(t, []string{high.ID, mid.ID, low.ID}, order)
	}},
}
