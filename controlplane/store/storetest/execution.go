package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

var executionTests = []test{
	{"CreateAndGet", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("manual"))
		before := b.now(t)
		e := newExec(job)
		e.ID = "0190f3a1-7c2b-7d4e-8f00-0000000000aa"
		e.NominalTime = before.Add(-time.Minute)
		// What the store sets, whatever the caller says:
		e.State = store.ExecRunning
		e.AgentID = "agent-1"
		e.LeaseEpoch = 4
		created, err := b.st.CreateExecution(b.ctx, e)
		require.NoError(t, err)

		require.Equal(t, e.ID, created.ID)
		require.Equal(t, store.ExecPending, created.State)
		require.Empty(t, created.AgentID)
		require.Zero(t, created.LeaseEpoch)
		require.True(t, created.LeaseDeadline.IsZero())
		require.Equal(t, 1, created.Attempt)
		require.Equal(t, store.TriggerManual, created.Trigger)
		require.Equal(t, e.NominalTime, created.NominalTime)
		require.Equal(t, e.NominalTime, created.NotBefore, "NotBefore defaults to the nominal time")
		require.False(t, created.CreatedAt.Before(before))
		require.Equal(t, job.Handler, created.Handler)
		require.Equal(t, job.Service, created.Service)
		require.Equal(t, job.Selector, created.Selector)
		require.Equal(t, job.Payload, created.Payload)
		require.Equal(t, job.ContentType, created.ContentType)
		require.Equal(t, job.Timeout, created.Timeout)
		require.Equal(t, job.Retry, created.Retry)
		require.Equal(t, job.Priority, created.Priority)
		require.Equal(t, e.TraceContext, created.TraceContext)
		require.Equal(t, e.TraceID, created.TraceID)
		require.Equal(t, created, b.get(t, e.ID))
	}},
	{"GeneratedID", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("manual"))
		first := b.createExec(t, job, nil)
		second := b.createExec(t, job, nil)
		for _, e := range []store.Execution{first, second} {
			id, err := uuid.Parse(e.ID)
			require.NoError(t, err)
			require.Equal(t, uuid.Version(7), id.Version())
		}
		require.Less(t, first.ID, second.ID, "ids sort by creation")
		require.False(t, first.NominalTime.IsZero(), "the nominal time of a manual run defaults to now")
	}},
	{"DuplicateID", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("manual"))
		e := b.createExec(t, job, nil)
		_, err := b.st.CreateExecution(b.ctx, newExecWithID(job, e.ID))
		require.ErrorIs(t, err, store.ErrAlreadyExists)
	}},
	{"UnknownJob", func(t *testing.T, b *bundle) {
		_, err := b.st.CreateExecution(b.ctx, newExec(newJob("nope")))
		require.ErrorIs(t, err, store.ErrNotFound)
	}},
	{"GetUnknown", func(t *testing.T, b *bundle) {
		_, err := b.st.GetExecution(b.ctx, "0190f3a1-7c2b-7d4e-8f00-0000000000ff")
		require.ErrorIs(t, err, store.ErrNotFound)
	}},
	{"ListPagesAndFilters", func(t *testing.T, b *bundle) {
		a := b.createJob(t, newJob("a"))
		other := b.createJob(t, newJob("b"))
		var made []store.Execution // oldest first
		for i := range 6 {
			job := a
			if i%3 == 2 {
				job = other
			}
			made = append(made, b.createExec(t, job, nil))
		}
		// made: a0 a1 b2 a3 a4 b5; move a3 to cancelled.
		_, err := b.st.RequestCancel(b.ctx, made[3].ID, "test")
		require.NoError(t, err)

		list := func(p store.ListExecutionsParams) []string {
			execs, err := b.st.ListExecutions(b.ctx, p)
			require.NoError(t, err)
			return ids(execs)
		}
		idsOf := func(is ...int) []string {
			out := []string{}
			for _, i := range is {
				out = append(out, made[i].ID)
			}
			return out
		}
		require.Equal(t, idsOf(5, 4, 3, 2, 1, 0), list(store.ListExecutionsParams{}))
		require.Equal(t, idsOf(5, 4), list(store.ListExecutionsParams{Limit: 2}))
		require.Equal(t, idsOf(3, 2), list(store.ListExecutionsParams{Limit: 2, BeforeID: made[4].ID}))
		require.Equal(t, idsOf(4, 3, 1, 0), list(store.ListExecutionsParams{Job: "a"}))
		require.Equal(t, idsOf(1, 0), list(store.ListExecutionsParams{Job: "a", BeforeID: made[3].ID}))
		require.Equal(t, idsOf(5, 2), list(store.ListExecutionsParams{Job: "b"}))
		require.Equal(t, idsOf(3), list(store.ListExecutionsParams{State: store.ExecCancelled}))
		require.Equal(t, idsOf(4, 1, 0), list(store.ListExecutionsParams{Job: "a", State: store.ExecPending}))
		require.Equal(t, idsOf(1), list(store.ListExecutionsParams{Job: "a", State: store.ExecPending, BeforeID: made[4].ID, Limit: 1}))
		require.Equal(t, []string{}, list(store.ListExecutionsParams{Job: "nope"}))
	}},
}

// newExecWithID returns a manual execution of job with the given id.
func newExecWithID(job store.Job, id string) store.Execution {
	e := newExec(job)
	e.ID = id
	return e
}

var claimTests = []test{
	{"Assigns", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.createExec(t, job, nil)
		before := b.now(t)
		claimed := b.claim(t, "agent-1", 10, time.Minute, job.Handler)
		require.Len(t, claimed, 1)
		c := claimed[0]
		require.Equal(t, e.ID, c.ID)
		require.Equal(t, store.ExecAssigned, c.State)
		require.Equal(t, "agent-1", c.AgentID)
		require.Equal(t, int64(1), c.LeaseEpoch)
		require.False(t, c.AssignedAt.Before(before))
		require.Equal(t, c.AssignedAt.Add(time.Minute), c.LeaseDeadline)
		require.Equal(t, job.Payload, c.Payload, "the payload comes with the claim")
		require.Equal(t, e.CreatedAt, c.CreatedAt)
		require.Equal(t, c, b.get(t, e.ID))

		require.Empty(t, b.claim(t, "agent-2", 10, time.Minute, job.Handler), "an assigned execution is not claimed again")
	}},
	{"PriorityThenAge", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		now := b.now(t)
		mk := func(priority int, age time.Duration) store.Execution {
			return b.createExec(t, job, func(e *store.Execution) {
				e.Priority = priority
				e.NotBefore = now.Add(-age)
			})
		}
		low := mk(0, time.Hour)
		highNew := mk(5, time.Minute)
		highOld := mk(5, time.Hour)
		mid := mk(2, time.Second)
		highTie := mk(5, time.Hour) // same NotBefore as highOld, larger id
		var seen []string
		claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
			Handlers: []string{job.Handler},
			Limit:    10,
			Lease:    time.Minute,
			Pick: func(candidates []store.Execution) []store.Assignment {
				seen = ids(candidates)
				// Assign in reverse to check the result follows Pick's order.
				out := pickAll("agent-1")(candidates)
				for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
					out[i], out[j] = out[j], out[i]
				}
				return out
			},
		})
		require.NoError(t, err)
		want := []string{highOld.ID, highTie.ID, highNew.ID, mid.ID, low.ID}
		require.Equal(t, want, seen)
		require.Equal(t, []string{low.ID, mid.ID, highNew.ID, highTie.ID, highOld.ID}, ids(claimed))
	}},
	{"Limit", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		for range 5 {
			b.createExec(t, job, nil)
		}
		require.Len(t, b.claim(t, "agent-1", 2, time.Minute, job.Handler), 2)
		require.Len(t, b.claim(t, "agent-1", 2, time.Minute, job.Handler), 2)
		require.Len(t, b.claim(t, "agent-1", 2, time.Minute, job.Handler), 1)
		claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
			Handlers: []string{job.Handler},
			Limit:    0,
			Lease:    time.Minute,
			Pick: func([]store.Execution) []store.Assignment {
				t.Error("pick called with a limit of 0")
				return nil
			},
		})
		require.NoError(t, err)
		require.Empty(t, claimed)
	}},
	{"HandlerFilter", func(t *testing.T, b *bundle) {
		ja := newJob("a")
		ja.Handler = "svc/a"
		ja = b.createJob(t, ja)
		jb := newJob("b")
		jb.Handler = "svc/b"
		jb = b.createJob(t, jb)
		jc := newJob("c")
		jc.Handler = "svc/c"
		jc = b.createJob(t, jc)
		ea := b.createExec(t, ja, nil)
		eb := b.createExec(t, jb, nil)
		b.createExec(t, jc, nil)

		require.Empty(t, b.claim(t, "agent-1", 10, time.Minute, "svc/none"))
		require.Empty(t, b.claim(t, "agent-1", 10, time.Minute))
		claimed := b.claim(t, "agent-1", 10, time.Minute, "svc/a", "svc/b")
		require.ElementsMatch(t, []string{ea.ID, eb.ID}, ids(claimed))
	}},
	{"NotBeforeInFuture", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		now := b.now(t)
		later := b.createExec(t, job, func(e *store.Execution) { e.NotBefore = now.Add(time.Hour) })
		// Far enough ahead that a loaded machine still claims before it is due.
		soon := b.createExec(t, job, func(e *store.Execution) { e.NotBefore = now.Add(time.Second) })
		require.Empty(t, b.claim(t, "agent-1", 10, time.Minute, job.Handler))
		b.pass(t, 1100*time.Millisecond)
		claimed := b.claim(t, "agent-1", 10, time.Minute, job.Handler)
		require.Equal(t, []string{soon.ID}, ids(claimed))
		require.Equal(t, store.ExecPending, b.get(t, later.ID).State)
	}},
	{"Lookahead", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		now := b.now(t)
		due := b.createExec(t, job, nil)
		soon := b.createExec(t, job, func(e *store.Execution) { e.NotBefore = now.Add(time.Minute) })
		sooner := b.createExec(t, job, func(e *store.Execution) { e.NotBefore = now.Add(30 * time.Second) })
		later := b.createExec(t, job, func(e *store.Execution) { e.NotBefore = now.Add(time.Hour) })
		var seen []string
		claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
			Handlers:  []string{job.Handler},
			Limit:     2,
			Lease:     10 * time.Second,
			Lookahead: 2 * time.Minute,
			Pick: func(candidates []store.Execution) []store.Assignment {
				seen = ids(candidates)
				return pickAll("agent-1")(candidates)
			},
		})
		require.NoError(t, err)
		// Due work first; what is due soon fills the rest, earliest first.
		require.Equal(t, []string{due.ID, sooner.ID}, seen)
		require.Equal(t, []string{due.ID, sooner.ID}, ids(claimed))
		// A lease runs from the not-before time of work claimed ahead.
		requireTime(t, sooner.NotBefore.Add(10*time.Second), b.get(t, sooner.ID).LeaseDeadline)
		require.True(t, b.get(t, due.ID).LeaseDeadline.Before(sooner.NotBefore))
		require.Equal(t, []string{soon.ID}, ids(b.claimAhead(t, 10, 2*time.Minute, job.Handler)))
		require.Equal(t, store.ExecPending, b.get(t, later.ID).State)
	}},
	{"PickChoosesSome", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e1 := b.createExec(t, job, nil)
		e2 := b.createExec(t, job, nil)
		e3 := b.createExec(t, job, nil)
		notDue := b.createExec(t, job, func(e *store.Execution) { e.NotBefore = b.now(t).Add(time.Hour) })
		claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
			Handlers: []string{job.Handler},
			Limit:    10,
			Lease:    time.Minute,
			Pick: func(candidates []store.Execution) []store.Assignment {
				require.Equal(t, []string{e1.ID, e2.ID, e3.ID}, ids(candidates))
				return []store.Assignment{
					{ExecutionID: e3.ID, AgentID: "agent-2"},
					{ExecutionID: notDue.ID, AgentID: "agent-2"}, // not a candidate
					{ExecutionID: e1.ID, AgentID: "agent-1"},
					{ExecutionID: e1.ID, AgentID: "agent-2"}, // picked twice
				}
			},
		})
		require.NoError(t, err)
		require.Equal(t, []string{e3.ID, e1.ID}, ids(claimed))
		require.Equal(t, "agent-2", claimed[0].AgentID)
		require.Equal(t, "agent-1", claimed[1].AgentID)
		require.Equal(t, int64(1), b.get(t, e1.ID).LeaseEpoch)
		require.Equal(t, store.ExecPending, b.get(t, e2.ID).State)
		require.Equal(t, store.ExecPending, b.get(t, notDue.ID).State)
	}},
	{"ConcurrentClaimersAssignOnce", func(t *testing.T, b *bundle) {
		const (
			execs    = 60
			claimers = 8
		)
		job := b.createJob(t, newJob("work"))
		for range execs {
			b.createExec(t, job, nil)
		}
		results := make([][]store.Execution, claimers)
		errs := make([]error, claimers)
		done := make(chan struct{})
		for i := range claimers {
			go func() {
				defer func() { done <- struct{}{} }()
				agent := "agent-" + string(rune('a'+i))
				for {
					got, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
						Handlers: []string{job.Handler},
						Limit:    3,
						Lease:    time.Minute,
						Pick:     pickAll(agent),
					})
					if err != nil {
						errs[i] = err
						return
					}
					if len(got) == 0 {
						return
					}
					results[i] = append(results[i], got...)
				}
			}()
		}
		for range claimers {
			<-done
		}
		seen := map[string]string{}
		for i, got := range results {
			require.NoError(t, errs[i])
			for _, e := range got {
				prev, dup := seen[e.ID]
				require.False(t, dup, "execution %s assigned to %s and %s", e.ID, prev, e.AgentID)
				seen[e.ID] = e.AgentID
				require.Equal(t, int64(1), e.LeaseEpoch)
				require.Equal(t, e.AgentID, b.get(t, e.ID).AgentID)
			}
		}
		require.Len(t, seen, execs)
		pending, err := b.st.ListExecutions(b.ctx, store.ListExecutionsParams{State: store.ExecPending})
		require.NoError(t, err)
		require.Empty(t, pending)
	}},
}
