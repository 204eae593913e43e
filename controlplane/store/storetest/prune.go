package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// finished creates an execution of job at nominal time t, assigns it and reports state.
// It returns the ended execution and the id of its retry, if retry made one.
func (b *bundle) finished(t *testing.T, job store.Job, nominal time.Time, state store.ExecState, retry store.RetryPlan) (store.Execution, string) {
	t.Helper()
	e := b.createExec(t, job, func(e *store.Execution) { e.NominalTime = nominal })
	claimed := b.claim(t, "agent-1", 1, time.Minute, job.Handler)
	require.Len(t, claimed, 1)
	require.Equal(t, e.ID, claimed[0].ID)
	c := store.Completion{ExecRef: ref(claimed[0]), State: state}
	if state != store.ExecSucceeded {
		c.Error = &store.ExecError{Message: "boom", Retryable: true}
	}
	out := b.complete(t, c, retry)
	require.True(t, out.Applied)
	return out.Execution, out.RetryID
}

// exists reports whether the execution is still stored.
func (b *bundle) exists(t *testing.T, id string) bool {
	t.Helper()
	_, err := b.st.GetExecution(b.ctx, id)
	if err == nil {
		return true
	}
	require.ErrorIs(t, err, store.ErrNotFound)
	return false
}

// pruneExecs calls PruneExecutions.
func (b *bundle) pruneExecs(t *testing.T, olderThan time.Duration, limit int) int {
	t.Helper()
	n, err := b.st.PruneExecutions(b.ctx, olderThan, limit)
	require.NoError(t, err)
	return n
}

// pruneFires calls PruneFires.
func (b *bundle) pruneFires(t *testing.T, olderThan time.Duration, limit int) int {
	t.Helper()
	n, err := b.st.PruneFires(b.ctx, olderThan, limit)
	require.NoError(t, err)
	return n
}

// The age in these tests is short so that PostgreSQL's clock, which cannot be moved, passes
// it quickly. Rows made before b.pass(pruneWait) are older than pruneAge; rows made after it
// are newer, since no test step takes pruneAge.
const (
	pruneAge  = 400 * time.Millisecond
	pruneWait = pruneAge + 100*time.Millisecond
)

var pruneTests = []test{
	{"Executions", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		t0 := b.now(t).Add(-time.Hour).Truncate(time.Second)
		at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }

		old1, _ := b.finished(t, job, at(1), store.ExecSucceeded, nil)
		old2, _ := b.finished(t, job, at(2), store.ExecFailed, noRetry)
		// A failed attempt whose retry is still pending is kept with it.
		chained, retryID := b.finished(t, job, at(3), store.ExecFailed, retryAfter(time.Hour))
		require.NotEmpty(t, retryID)
		pending := b.createExec(t, job, func(e *store.Execution) {
			e.NominalTime = at(4)
			e.NotBefore = b.now(t).Add(time.Hour) // not claimed by the steps below
		})
		b.pass(t, pruneWait)
		recent, _ := b.finished(t, job, at(5), store.ExecSucceeded, nil)

		require.Equal(t, 0, b.pruneExecs(t, pruneAge, 0), "a limit of 0 prunes nothing")
		require.Equal(t, 1, b.pruneExecs(t, pruneAge, 1), "bounded by the limit")
		require.Equal(t, 1, b.pruneExecs(t, pruneAge, 1))
		require.Equal(t, 0, b.pruneExecs(t, pruneAge, 1), "nothing else is old and final without a live attempt")
		require.False(t, b.exists(t, old1.ID))
		require.False(t, b.exists(t, old2.ID))
		require.True(t, b.exists(t, chained.ID), "its retry is still pending")
		require.True(t, b.exists(t, retryID))
		require.True(t, b.exists(t, pending.ID), "pending executions are never pruned")
		require.True(t, b.exists(t, recent.ID), "newer than the age")

		// Once the retry has ended, the whole chain goes.
		claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
			Handlers: []string{job.Handler}, Limit: 10, Lease: time.Minute,
			Pick: func(cands []store.Execution) []store.Assignment {
				var out []store.Assignment
				for _, c := range cands {
					if c.ID == retryID {
						out = append(out, store.Assignment{ExecutionID: c.ID, AgentID: "agent-1"})
					}
				}
				return out
			},
		})
		require.NoError(t, err)
		require.Empty(t, claimed, "the retry is not due for an hour")
		_, err = b.st.RequestCancel(b.ctx, retryID, "no longer wanted")
		require.NoError(t, err)
		b.pass(t, pruneWait)
		require.Equal(t, 3, b.pruneExecs(t, pruneAge, 100))
		require.False(t, b.exists(t, chained.ID))
		require.False(t, b.exists(t, retryID))
		require.False(t, b.exists(t, recent.ID))
		require.True(t, b.exists(t, pending.ID))

		_, err = b.st.GetJob(b.ctx, "work")
		require.NoError(t, err, "the job stays")
	}},
	{"Fires", func(t *testing.T, b *bundle) {
		job := b.dueJob(t, "tick", -time.Hour)
		t0 := job.NextFireAt
		at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
		fires := b.fire(t, 10, 0, func(j store.Job, _ time.Time) store.FirePlan {
			return store.FirePlan{Fires: []store.PlannedFire{
				{NominalTime: at(0), Outcome: store.FireMissed},
				dispatched(j, at(1)),
				{NominalTime: at(2), Outcome: store.FireSkippedOverlap},
				{NominalTime: at(3), Outcome: store.FireSkippedPaused},
			}, NextFireAt: at(4)}
		})
		require.Len(t, fires, 4)
		live := fires[1].ExecutionID
		b.pass(t, pruneWait)
		recent := b.fire(t, 10, 0, func(j store.Job, _ time.Time) store.FirePlan {
			return store.FirePlan{Fires: []store.PlannedFire{{NominalTime: at(4), Outcome: store.FireMissed}}}
		})
		require.Len(t, recent, 1)

		require.Equal(t, 0, b.pruneFires(t, pruneAge, 0))
		require.Equal(t, 2, b.pruneFires(t, pruneAge, 2), "bounded by the limit")
		require.Equal(t, 1, b.pruneFires(t, pruneAge, 2))
		require.Equal(t, 0, b.pruneFires(t, pruneAge, 2), "the dispatched fire's execution is pending")
		remaining := func() []time.Time {
			var out []time.Time
			for _, f := range b.listFires(t, "tick") {
				out = append(out, f.NominalTime)
			}
			return out
		}
		require.Equal(t, []time.Time{at(4), at(1)}, remaining())

		claimed := b.claim(t, "agent-1", 10, time.Minute, job.Handler)
		require.Len(t, claimed, 1)
		require.Equal(t, live, claimed[0].ID)
		require.Equal(t, 0, b.pruneFires(t, pruneAge, 10), "nor while an agent holds it")
		b.complete(t, store.Completion{ExecRef: ref(claimed[0]), State: store.ExecSucceeded}, nil)
		require.Equal(t, 1, b.pruneFires(t, pruneAge, 10), "its execution ended")
		require.Equal(t, []time.Time{at(4)}, remaining())
		require.True(t, b.exists(t, live), "fires and executions are pruned on their own")
	}},
}

var nextNotBeforeTests = []test{
	{"EarliestFuturePerHandlers", func(t *testing.T, b *bundle) {
		next := func(handlers ...string) time.Time {
			t.Helper()
			got, err := b.st.NextNotBefore(b.ctx, handlers)
			require.NoError(t, err)
			return got
		}
		require.True(t, next().IsZero(), "no handlers")
		require.True(t, next("a").IsZero(), "no executions")

		job := b.createJob(t, newJob("work"))
		now := b.now(t)
		at := func(d time.Duration, handler string) store.Execution {
			return b.createExec(t, job, func(e *store.Execution) {
				e.Handler = handler
				e.NotBefore = now.Add(d)
			})
		}
		at(-time.Second, "a") // due already: a claim takes it, not a timer
		inHour := at(time.Hour, "a")
		at(2*time.Hour, "a")
		at(30*time.Minute, "b")
		requireTime(t, now.Add(time.Hour), next("a"))
		requireTime(t, now.Add(30*time.Minute), next("b"))
		requireTime(t, now.Add(30*time.Minute), next("a", "b"))
		require.True(t, next("c").IsZero())

		_, err := b.st.RequestCancel(b.ctx, inHour.ID, "")
		require.NoError(t, err)
		requireTime(t, now.Add(2*time.Hour), next("a"), "only pending executions count")
	}},
}
