package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

var leaseTests = []test{
	{"MarkStarted", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		startedAt := b.now(t).Add(-time.Second)
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{{ID: e.ID, Epoch: e.LeaseEpoch + 1}}, startedAt))
		require.Equal(t, store.ExecAssigned, b.get(t, e.ID).State, "a wrong epoch is ignored")

		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(e)}, startedAt))
		got := b.get(t, e.ID)
		require.Equal(t, store.ExecRunning, got.State)
		require.Equal(t, startedAt, got.StartedAt)
		require.Equal(t, e.LeaseEpoch, got.LeaseEpoch)

		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(e)}, startedAt.Add(time.Second)))
		require.Equal(t, startedAt, b.get(t, e.ID).StartedAt, "only an ASSIGNED execution starts")
	}},
	{"MarkStartedIgnoresOthers", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		done := b.claimOne(t, job, "agent-1", time.Minute)
		pending := b.createExec(t, job, nil)
		_, err := b.st.CompleteExecutions(b.ctx, []store.Completion{{ExecRef: ref(done), State: store.ExecSucceeded}}, noRetry)
		require.NoError(t, err)
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{
			{ID: pending.ID, Epoch: 0},
			ref(done),
			{ID: "0190f3a1-7c2b-7d4e-8f00-0000000000ff", Epoch: 1},
		}, b.now(t)))
		require.Equal(t, store.ExecPending, b.get(t, pending.ID).State)
		require.Equal(t, store.ExecSucceeded, b.get(t, done.ID).State)
		require.NoError(t, b.st.MarkStarted(b.ctx, nil, time.Time{}))
	}},
	{"MarkStartedZeroTimeIsNow", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		before := b.now(t)
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(e)}, time.Time{}))
		require.False(t, b.get(t, e.ID).StartedAt.Before(before))
	}},
	{"ExtendLeases", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e1 := b.claimOne(t, job, "agent-1", time.Minute)
		e2 := b.claimOne(t, job, "agent-1", time.Minute)
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(e2)}, time.Time{}))
		other := b.claimOne(t, job, "agent-2", time.Minute)

		before := b.now(t)
		n, err := b.st.ExtendLeases(b.ctx, "agent-1", []store.ExecRef{
			ref(e1),
			ref(e2),
			{ID: e1.ID, Epoch: e1.LeaseEpoch + 1}, // wrong epoch
			ref(other),                            // another agent's
		}, time.Hour)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		for _, e := range []store.Execution{e1, e2} {
			got := b.get(t, e.ID)
			require.False(t, got.LeaseDeadline.Before(before.Add(time.Hour)))
			require.Equal(t, e.LeaseEpoch, got.LeaseEpoch)
		}
		require.Equal(t, other.LeaseDeadline, b.get(t, other.ID).LeaseDeadline)

		_, err = b.st.CompleteExecutions(b.ctx, []store.Completion{{ExecRef: ref(e1), State: store.ExecSucceeded}}, noRetry)
		require.NoError(t, err)
		n, err = b.st.ExtendLeases(b.ctx, "agent-1", []store.ExecRef{ref(e1)}, time.Hour)
		require.NoError(t, err)
		require.Zero(t, n, "a finished execution has no lease")
	}},
	{"ReleaseAndClaimAgain", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(e)}, time.Time{}))

		require.NoError(t, b.st.ReleaseExecutions(b.ctx, []store.ExecRef{{ID: e.ID, Epoch: e.LeaseEpoch + 1}}))
		require.Equal(t, store.ExecRunning, b.get(t, e.ID).State, "a wrong epoch is ignored")

		require.NoError(t, b.st.ReleaseExecutions(b.ctx, []store.ExecRef{ref(e)}))
		got := b.get(t, e.ID)
		require.Equal(t, store.ExecPending, got.State)
		require.True(t, got.LeaseDeadline.IsZero())
		require.True(t, got.StartedAt.IsZero())
		require.True(t, got.FinishedAt.IsZero())
		require.Equal(t, 1, got.Attempt, "a release does not count an attempt")
		require.Equal(t, e.LeaseEpoch, got.LeaseEpoch)

		again := b.claim(t, "agent-2", 10, time.Minute, job.Handler)
		require.Len(t, again, 1)
		require.Equal(t, e.ID, again[0].ID)
		require.Equal(t, e.LeaseEpoch+1, again[0].LeaseEpoch)
		require.Equal(t, "agent-2", again[0].AgentID)

		require.NoError(t, b.st.ReleaseExecutions(b.ctx, []store.ExecRef{ref(e)}))
		require.Equal(t, store.ExecAssigned, b.get(t, e.ID).State, "the old assignment cannot release the new one")
		require.NoError(t, b.st.ReleaseExecutions(b.ctx, nil))
	}},
	{"ReleaseCancelRequested", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		_, err := b.st.RequestCancel(b.ctx, e.ID, "stop")
		require.NoError(t, err)
		require.NoError(t, b.st.ReleaseExecutions(b.ctx, []store.ExecRef{ref(e)}))
		got := b.get(t, e.ID)
		require.Equal(t, store.ExecCancelled, got.State, "a released execution whose cancellation was requested is cancelled")
		require.False(t, got.FinishedAt.IsZero())
		require.NotNil(t, got.Error)
		require.Equal(t, "Cancelled", got.Error.Kind)
		require.Empty(t, b.claim(t, "agent-1", 10, time.Minute, job.Handler))
	}},
	{"ExpireLeases", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		short := b.claimOne(t, job, "agent-1", 5*time.Millisecond)
		long := b.claimOne(t, job, "agent-2", time.Hour)
		b.pass(t, 10*time.Millisecond)

		var planned store.Execution
		lost, err := b.st.ExpireLeases(b.ctx, 10, func(e store.Execution) (time.Time, bool) {
			planned = e
			return e.FinishedAt.Add(time.Second), true
		})
		require.NoError(t, err)
		require.Len(t, lost, 1)
		l := lost[0]
		require.Equal(t, short.ID, l.ID)
		require.Equal(t, store.ExecLost, l.State)
		require.Equal(t, short.LeaseEpoch, l.LeaseEpoch)
		require.False(t, l.FinishedAt.IsZero())
		require.Equal(t, &store.ExecError{Message: "lease expired on agent agent-1", Kind: "LeaseExpired", Retryable: true}, l.Error)
		require.Equal(t, l, planned, "the plan sees the attempt as it ends")
		require.Equal(t, l, b.get(t, short.ID))
		require.Equal(t, store.ExecAssigned, b.get(t, long.ID).State)

		execs := b.listExecs(t, "work")
		require.Len(t, execs, 3)
		retry := execs[0]
		require.Equal(t, short.ID, retry.RetryOf)
		require.Equal(t, 2, retry.Attempt)
		require.Equal(t, store.TriggerRetry, retry.Trigger)
		require.Equal(t, store.ExecPending, retry.State)
		require.Equal(t, l.FinishedAt.Add(time.Second), retry.NotBefore)

		again, err := b.st.ExpireLeases(b.ctx, 10, mustNotRetry(t))
		require.NoError(t, err)
		require.Empty(t, again, "a lost execution is not lost twice")

		out, err := b.st.CompleteExecutions(b.ctx, []store.Completion{{ExecRef: ref(short), State: store.ExecSucceeded}}, mustNotRetry(t))
		require.NoError(t, err)
		require.False(t, out[0].Applied, "a late result of a lost attempt is rejected")
		require.Equal(t, "execution already lost", out[0].Reason)
	}},
	{"ExpireLeasesLimitAndNoRetry", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		for range 3 {
			b.claimOne(t, job, "agent-1", time.Millisecond)
		}
		b.pass(t, 5*time.Millisecond)
		none, err := b.st.ExpireLeases(b.ctx, 0, mustNotRetry(t))
		require.NoError(t, err)
		require.Empty(t, none, "a limit of 0 expires nothing")
		first, err := b.st.ExpireLeases(b.ctx, 2, noRetry)
		require.NoError(t, err)
		require.Len(t, first, 2)
		rest, err := b.st.ExpireLeases(b.ctx, 2, noRetry)
		require.NoError(t, err)
		require.Len(t, rest, 1)
		require.Len(t, b.listExecs(t, "work"), 3, "no retries when the plan says no")
	}},
	{"ExpireLeasesCancelRequested", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Millisecond)
		_, err := b.st.RequestCancel(b.ctx, e.ID, "stop")
		require.NoError(t, err)
		b.pass(t, 5*time.Millisecond)
		lost, err := b.st.ExpireLeases(b.ctx, 10, mustNotRetry(t))
		require.NoError(t, err)
		require.Len(t, lost, 1)
		require.Len(t, b.listExecs(t, "work"), 1, "an attempt whose cancellation was requested is not retried")
	}},
}
