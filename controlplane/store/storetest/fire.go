package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// dispatched plans a dispatched fire at nominal with an execution built from the job.
func dispatched(job store.Job, nominal time.Time) store.PlannedFire {
	e := newExec(job)
	e.Trigger = store.TriggerSchedule
	e.NominalTime = nominal
	return store.PlannedFire{NominalTime: nominal, Outcome: store.FireDispatched, Execution: &e}
}

// dispatchOnce is a plan that dispatches the job's due fire and stops it firing.
func dispatchOnce(job store.Job, _ time.Time) store.FirePlan {
	return store.FirePlan{Fires: []store.PlannedFire{dispatched(job, job.NextFireAt)}}
}

// dueJob stores a job due d from now (negative: in the past).
func (b *bundle) dueJob(t *testing.T, name string, d time.Duration) store.Job {
	t.Helper()
	job := newJob(name)
	job.NextFireAt = b.now(t).Add(d)
	return b.createJob(t, job)
}

// fire calls FireDueJobs.
func (b *bundle) fire(t *testing.T, limit int, horizon time.Duration, plan func(store.Job, time.Time) store.FirePlan) []store.Fire {
	t.Helper()
	fires, err := b.st.FireDueJobs(b.ctx, store.FireDueParams{Limit: limit, Horizon: horizon, Plan: asDue(plan)})
	require.NoError(t, err)
	return fires
}

// listFires returns all of a job's fires.
func (b *bundle) listFires(t *testing.T, job string) []store.Fire {
	t.Helper()
	fires, err := b.st.ListFires(b.ctx, store.ListFiresParams{Job: job, Limit: 1000})
	require.NoError(t, err)
	return fires
}

// listExecs returns all of a job's executions.
func (b *bundle) listExecs(t *testing.T, job string) []store.Execution {
	t.Helper()
	execs, err := b.st.ListExecutions(b.ctx, store.ListExecutionsParams{Job: job, Limit: 1000})
	require.NoError(t, err)
	return execs
}

// failPlan is a plan that fails the test when it is called.
func failPlan(t *testing.T) func(store.Job, time.Time) store.FirePlan {
	return func(job store.Job, _ time.Time) store.FirePlan {
		t.Errorf("plan called for job %q", job.Name)
		return store.FirePlan{NextFireAt: job.NextFireAt}
	}
}

var fireTests = []test{
	{"DispatchedFire", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "tick", -time.Second)
		before := b.now(t)
		next := before.Add(time.Hour)
		var planNow time.Time
		fires := b.fire(t, 10, 0, func(j store.Job, now time.Time) store.FirePlan {
			require.Equal(t, job, j)
			planNow = now
			return store.FirePlan{Fires: []store.PlannedFire{dispatched(j, j.NextFireAt)}, NextFireAt: next}
		})
		require.False(t, planNow.Before(before), "the plan gets the database clock")
		require.Len(t, fires, 1)
		f := fires[0]
		require.Equal(t, "tick", f.Job)
		require.Equal(t, job.NextFireAt, f.NominalTime)
		require.Equal(t, store.FireDispatched, f.Outcome)
		require.Equal(t, planNow, f.FiredAt)
		require.NotNil(t, f.Execution)
		require.NotEmpty(t, f.ExecutionID)
		require.Equal(t, f.ExecutionID, f.Execution.ID)

		e := *f.Execution
		require.Equal(t, store.ExecPending, e.State)
		require.Equal(t, 1, e.Attempt)
		require.Equal(t, store.TriggerSchedule, e.Trigger)
		require.Equal(t, "tick", e.Job)
		require.Equal(t, job.Handler, e.Handler)
		require.Equal(t, job.Payload, e.Payload)
		require.Equal(t, f.NominalTime, e.NominalTime)
		require.Equal(t, f.NominalTime, e.NotBefore, "NotBefore defaults to the nominal time")
		require.Equal(t, planNow, e.CreatedAt)
		require.Zero(t, e.LeaseEpoch)
		require.Empty(t, e.AgentID)
		require.Equal(t, e, b.get(t, e.ID))

		got, err := b.st.GetJob(b.ctx, "tick")
		require.NoError(t, err)
		require.Equal(t, next, got.NextFireAt)
		require.Equal(t, job.Version, got.Version, "moving NextFireAt is not a change of the job")

		listed := b.listFires(t, "tick")
		f.Execution = nil
		require.Equal(t, []store.Fire{f}, listed)

		require.Empty(t, b.fire(t, 10, 0, failPlan(t)), "the job is not due any more")
	}},
	{"Outcomes", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "catchup", -3*time.Minute)
		t0 := job.NextFireAt
		fires := b.fire(t, 10, 0, func(j store.Job, _ time.Time) store.FirePlan {
			return store.FirePlan{Fires: []store.PlannedFire{
				{NominalTime: t0, Outcome: store.FireMissed},
				{NominalTime: t0.Add(time.Minute), Outcome: store.FireSkippedOverlap},
				{NominalTime: t0.Add(2 * time.Minute), Outcome: store.FireSkippedPaused},
				dispatched(j, t0.Add(3*time.Minute)),
			}}
		})
		require.Len(t, fires, 4)
		for i, want := range []store.FireOutcome{store.FireMissed, store.FireSkippedOverlap, store.FireSkippedPaused} {
			require.Equal(t, want, fires[i].Outcome)
			require.Empty(t, fires[i].ExecutionID)
			require.Nil(t, fires[i].Execution)
		}
		require.Equal(t, store.FireDispatched, fires[3].Outcome)
		require.NotEmpty(t, fires[3].ExecutionID)

		listed := b.listFires(t, "catchup")
		require.Len(t, listed, 4)
		for i, f := range listed { // newest first
			want := fires[3-i]
			want.Execution = nil
			require.Equal(t, want, f)
		}
		require.Len(t, b.listExecs(t, "catchup"), 1)

		got, err := b.st.GetJob(b.ctx, "catchup")
		require.NoError(t, err)
		require.True(t, got.NextFireAt.IsZero(), "a zero NextFireAt stops the job")
		require.Empty(t, b.fire(t, 10, time.Hour, failPlan(t)))
	}},
	{"ExecutionFieldsKept", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "tick", -time.Second)
		notBefore := job.NextFireAt.Add(5 * time.Second)
		id := "0190f3a1-7c2b-7d4e-8f00-000000000001"
		fires := b.fire(t, 10, 0, func(j store.Job, _ time.Time) store.FirePlan {
			p := dispatched(j, j.NextFireAt)
			p.Execution.ID = id
			p.Execution.NotBefore = notBefore
			p.Execution.Priority = 7
			return store.FirePlan{Fires: []store.PlannedFire{p}}
		})
		require.Len(t, fires, 1)
		e := b.get(t, id)
		require.Equal(t, id, fires[0].ExecutionID)
		require.Equal(t, notBefore, e.NotBefore)
		require.Equal(t, 7, e.Priority)
		require.Equal(t, job.Selector, e.Selector)
		require.Equal(t, job.Retry, e.Retry)
		require.Equal(t, job.Timeout, e.Timeout)
	}},
	{"PausedClaimedWhenDueNotAhead", func(t *testing.T, b *bundle) {
		now := b.now(t)
		paused := newJob("paused")
		paused.Paused = true
		paused.NextFireAt = now.Add(-time.Minute)
		b.createJob(t, paused)
		ahead := newJob("paused-ahead")
		ahead.Paused = true
		ahead.NextFireAt = now.Add(time.Hour)
		b.createJob(t, ahead)
		b.createJob(t, newJob("manual-only"))

		// A paused job is claimed once it is due, so that its fires are recorded as skipped,
		// but never ahead of time: it may be resumed before then.
		var planned []string
		fires := b.fire(t, 10, 2*time.Hour, func(j store.Job, now time.Time) store.FirePlan {
			planned = append(planned, j.Name)
			require.True(t, j.Paused)
			return store.FirePlan{
				Fires:      []store.PlannedFire{{NominalTime: j.NextFireAt, Outcome: store.FireSkippedPaused}},
				NextFireAt: now.Add(time.Hour),
			}
		})
		require.Equal(t, []string{"paused"}, planned)
		require.Len(t, fires, 1)
		require.Equal(t, store.FireSkippedPaused, fires[0].Outcome)
		require.Empty(t, b.listExecs(t, "paused"))

		_, err := b.st.UpdateJob(b.ctx, "paused-ahead", func(j *store.Job) error { j.Paused = false; return nil })
		require.NoError(t, err)
		require.Len(t, b.fire(t, 10, 2*time.Hour, dispatchOnce), 1, "unpaused, it is claimed ahead again")
	}},
	{"AbortedTransactionLeavesNoGap", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "tick", -3*time.Second)
		t0 := job.NextFireAt
		every := func(j store.Job, now time.Time) store.FirePlan {
			var p store.FirePlan
			for at := j.NextFireAt; !at.After(now); at = at.Add(time.Second) {
				p.Fires = append(p.Fires, dispatched(j, at))
				p.NextFireAt = at.Add(time.Second)
			}
			return p
		}
		// A replica dies in the middle of the transaction: here, its context ends while the
		// plan runs, after the claim and before any fire is written.
		ctx, cancel := context.WithCancel(b.ctx)
		_, err := b.st.FireDueJobs(ctx, store.FireDueParams{Limit: 10, Plan: func(d store.DueJob, now time.Time) store.FirePlan {
			cancel()
			return every(d.Job, now)
		}})
		require.Error(t, err)
		got, err := b.st.GetJob(b.ctx, "tick")
		require.NoError(t, err)
		require.Equal(t, t0, got.NextFireAt, "the next fire time moves only with the fires it passes")
		require.Empty(t, b.listFires(t, "tick"))
		require.Empty(t, b.listExecs(t, "tick"))

		// The next caller records every nominal time from where the job stood.
		fires := b.fire(t, 10, 0, every)
		require.GreaterOrEqual(t, len(fires), 3)
		for i, f := range fires {
			require.Equal(t, t0.Add(time.Duration(i)*time.Second), f.NominalTime)
		}
	}},
	{"Horizon", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "later", time.Hour)
		require.Empty(t, b.fire(t, 10, 0, failPlan(t)))
		require.Empty(t, b.fire(t, 10, 30*time.Minute, failPlan(t)))
		fires := b.fire(t, 10, 2*time.Hour, func(j store.Job, now time.Time) store.FirePlan {
			require.True(t, now.Before(j.NextFireAt), "claimed ahead of time")
			return dispatchOnce(j, now)
		})
		require.Len(t, fires, 1)
		require.Equal(t, job.NextFireAt, fires[0].NominalTime)
		require.Equal(t, job.NextFireAt, fires[0].Execution.NotBefore, "held until its nominal time")
	}},
	{"EarliestFirstAndLimit", func(t *testing.T, b *bundle) {
		b.dueJob(t, "c", -time.Second)
		b.dueJob(t, "a", -2*time.Second)
		b.dueJob(t, "b", -3*time.Second)
		var order []string
		plan := func(j store.Job, now time.Time) store.FirePlan {
			order = append(order, j.Name)
			return dispatchOnce(j, now)
		}
		require.Len(t, b.fire(t, 2, 0, plan), 2)
		require.Equal(t, []string{"b", "a"}, order)
		require.Len(t, b.fire(t, 2, 0, plan), 1)
		require.Equal(t, []string{"b", "a", "c"}, order)
	}},
	{"LimitZero", func(t *testing.T, b *bundle) {
		b.dueJob(t, "due", -time.Second)
		require.Empty(t, b.fire(t, 0, 0, failPlan(t)))
	}},
	{"RecordedFireNotRepeated", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "again", -time.Minute)
		t0 := job.NextFireAt
		stay := func(j store.Job, _ time.Time) store.FirePlan {
			// Plans t0 again and again, and keeps the job due.
			return store.FirePlan{Fires: []store.PlannedFire{dispatched(j, t0)}, NextFireAt: t0}
		}
		first := b.fire(t, 10, 0, stay)
		require.Len(t, first, 1)
		require.Empty(t, b.fire(t, 10, 0, stay), "a recorded fire is not recorded again")
		require.Equal(t, []string{first[0].ExecutionID}, ids(b.listExecs(t, "again")), "nor its execution created")

		second := b.fire(t, 10, 0, func(j store.Job, _ time.Time) store.FirePlan {
			return store.FirePlan{Fires: []store.PlannedFire{
				{NominalTime: t0, Outcome: store.FireMissed},
				dispatched(j, t0.Add(time.Second)),
			}}
		})
		require.Len(t, second, 1)
		require.Equal(t, t0.Add(time.Second), second[0].NominalTime)
		fires := b.listFires(t, "again")
		require.Len(t, fires, 2)
		require.Equal(t, store.FireDispatched, fires[1].Outcome, "the first outcome stays")
		require.Equal(t, first[0].ExecutionID, fires[1].ExecutionID)
		require.Len(t, b.listExecs(t, "again"), 2)
	}},
	{"ConcurrentCallersFireOnce", func(t *testing.T, b *bundle) {
		const (
			jobs    = 5
			fires   = 30 // per job, after the first
			callers = 8
		)
		start := b.now(t)
		for i := range jobs {
			job := newJob(string(rune('a' + i)))
			job.NextFireAt = start
			b.createJob(t, job)
		}
		last := start.Add(fires * time.Second)
		// Each plan records the previous nominal time again (a conflict) and the current one.
		plan := func(j store.Job, _ time.Time) store.FirePlan {
			cur := j.NextFireAt
			p := store.FirePlan{Fires: []store.PlannedFire{dispatched(j, cur.Add(-time.Second)), dispatched(j, cur)}}
			if cur.Before(last) {
				p.NextFireAt = cur.Add(time.Second)
			}
			return p
		}
		var (
			recorded atomic.Int64
			wg       sync.WaitGroup
			errs     = make(chan error, callers)
		)
		for range callers {
			wg.Go(func() {
				for {
					got, err := b.st.FireDueJobs(b.ctx, store.FireDueParams{Limit: 2, Horizon: time.Hour, Plan: asDue(plan)})
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					recorded.Add(int64(len(got)))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		perJob := fires + 2 // start-1s .. start+fires*1s
		require.Equal(t, int64(jobs*perJob), recorded.Load(), "each fire returned once")
		seen := map[string]bool{}
		for i := range jobs {
			name := string(rune('a' + i))
			listed := b.listFires(t, name)
			require.Len(t, listed, perJob, name)
			execs := b.listExecs(t, name)
			require.Len(t, execs, perJob, name)
			byID := map[string]store.Execution{}
			for _, e := range execs {
				byID[e.ID] = e
			}
			for k, f := range listed {
				require.Equal(t, last.Add(-time.Duration(k)*time.Second), f.NominalTime)
				e, ok := byID[f.ExecutionID]
				require.True(t, ok, "fire %s of %s has its execution", f.NominalTime, name)
				require.Equal(t, f.NominalTime, e.NominalTime)
				require.False(t, seen[e.ID])
				seen[e.ID] = true
			}
		}
	}},
	{"ListPages", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "paged", -time.Hour)
		b.dueJob(t, "other", -time.Hour)
		t0 := job.NextFireAt
		b.fire(t, 10, 0, func(j store.Job, _ time.Time) store.FirePlan {
			var p store.FirePlan
			for i := range 5 {
				p.Fires = append(p.Fires, store.PlannedFire{NominalTime: t0.Add(time.Duration(i) * time.Minute), Outcome: store.FireMissed})
			}
			return p
		})
		nominal := func(p store.ListFiresParams) []time.Time {
			fires, err := b.st.ListFires(b.ctx, p)
			require.NoError(t, err)
			out := []time.Time{}
			for _, f := range fires {
				require.Equal(t, p.Job, f.Job)
				out = append(out, f.NominalTime)
			}
			return out
		}
		at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
		require.Equal(t, []time.Time{at(4), at(3), at(2), at(1), at(0)}, nominal(store.ListFiresParams{Job: "paged"}))
		require.Equal(t, []time.Time{at(4), at(3)}, nominal(store.ListFiresParams{Job: "paged", Limit: 2}))
		require.Equal(t, []time.Time{at(2), at(1)}, nominal(store.ListFiresParams{Job: "paged", Limit: 2, Before: at(3)}))
		require.Equal(t, []time.Time{at(0)}, nominal(store.ListFiresParams{Job: "paged", Limit: 2, Before: at(1)}))
		require.Equal(t, []time.Time{}, nominal(store.ListFiresParams{Job: "paged", Before: at(0)}))
		require.Len(t, nominal(store.ListFiresParams{Job: "other"}), 5)
		require.Equal(t, []time.Time{}, nominal(store.ListFiresParams{Job: "nope"}))
	}},
}
