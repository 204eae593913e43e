package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// complete reports one result and returns its outcome.
func (b *bundle) complete(t *testing.T, c store.Completion, retry store.RetryPlan) store.CompletionOutcome {
	t.Helper()
	out, err := b.st.CompleteExecutions(b.ctx, []store.Completion{c}, retry)
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, c.ExecRef, out[0].ExecRef)
	return out[0]
}

var completeTests = []test{
	{"Succeeded", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		now := b.now(t)
		started, finished := now.Add(-2*time.Second), now.Add(-time.Second)
		out := b.complete(t, store.Completion{
			ExecRef:           ref(e),
			State:             store.ExecSucceeded,
			Result:            []byte(`{"ok":true}`),
			ResultContentType: "application/json",
			StartedAt:         started,
			FinishedAt:        finished,
		}, mustNotRetry(t))
		require.True(t, out.Applied)
		require.Empty(t, out.Reason)
		require.Empty(t, out.RetryID)
		got := out.Execution
		require.Equal(t, store.ExecSucceeded, got.State)
		require.Equal(t, []byte(`{"ok":true}`), got.Result)
		require.Equal(t, "application/json", got.ResultContentType)
		require.Equal(t, started, got.StartedAt)
		require.Equal(t, finished, got.FinishedAt)
		require.Nil(t, got.Error)
		require.Equal(t, e.LeaseEpoch, got.LeaseEpoch)
		require.Equal(t, got, b.get(t, e.ID))

		again := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecFailed}, mustNotRetry(t))
		require.False(t, again.Applied)
		require.Equal(t, "execution already succeeded", again.Reason)
		require.Equal(t, store.ExecSucceeded, b.get(t, e.ID).State)
	}},
	{"KeepsEarlierStart", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		started := b.now(t).Add(-time.Minute)
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(e)}, started))
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecSucceeded, StartedAt: started.Add(time.Second)}, nil)
		require.True(t, out.Applied)
		require.Equal(t, started, out.Execution.StartedAt)
		require.False(t, out.Execution.FinishedAt.IsZero(), "a zero finish time is now")
	}},
	{"StaleEpoch", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		first := b.claimOne(t, job, "agent-1", time.Minute)
		require.NoError(t, b.st.ReleaseExecutions(b.ctx, []store.ExecRef{ref(first)}))
		second := b.claim(t, "agent-2", 1, time.Minute, job.Handler)[0]
		require.Equal(t, first.LeaseEpoch+1, second.LeaseEpoch)

		out := b.complete(t, store.Completion{ExecRef: ref(first), State: store.ExecSucceeded, Result: []byte("late")}, mustNotRetry(t))
		require.False(t, out.Applied)
		require.Equal(t, "stale lease epoch 1 (current 2)", out.Reason)
		got := b.get(t, first.ID)
		require.Equal(t, store.ExecAssigned, got.State)
		require.Nil(t, got.Result)

		require.True(t, b.complete(t, store.Completion{ExecRef: ref(second), State: store.ExecSucceeded}, nil).Applied)
	}},
	{"NotAssigned", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		require.NoError(t, b.st.ReleaseExecutions(b.ctx, []store.ExecRef{ref(e)}))
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecSucceeded}, nil)
		require.False(t, out.Applied, "a released execution takes no result")
		require.NotEmpty(t, out.Reason)
		require.Equal(t, store.ExecPending, b.get(t, e.ID).State)
	}},
	{"NotFound", func(t *testing.T, b *bundle) {
		out := b.complete(t, store.Completion{ExecRef: store.ExecRef{ID: "0190f3a1-7c2b-7d4e-8f00-0000000000ff", Epoch: 1}, State: store.ExecSucceeded}, nil)
		require.False(t, out.Applied)
		require.Equal(t, "not found", out.Reason)
	}},
	{"NotAResultState", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		for _, s := range []store.ExecState{store.ExecPending, store.ExecAssigned, store.ExecRunning, store.ExecLost, "bogus"} {
			out := b.complete(t, store.Completion{ExecRef: ref(e), State: s}, nil)
			require.False(t, out.Applied, s)
			require.NotEmpty(t, out.Reason, s)
		}
		require.Equal(t, store.ExecAssigned, b.get(t, e.ID).State)
	}},
	{"FailedRetried", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(e)}, time.Time{}))
		execErr := &store.ExecError{Message: "connection refused", Kind: "Unavailable", Retryable: true, RetryAfter: 3 * time.Second}
		var planned store.Execution
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecFailed, Error: execErr}, func(x store.Execution) (time.Time, bool) {
			planned = x
			return x.FinishedAt.Add(x.Error.RetryAfter), true
		})
		require.True(t, out.Applied)
		require.Equal(t, store.ExecFailed, out.Execution.State)
		require.Equal(t, execErr, out.Execution.Error)
		require.Equal(t, out.Execution, planned, "the plan sees the attempt as it ends")
		require.False(t, planned.FinishedAt.IsZero())
		require.NotEmpty(t, out.RetryID)

		r := b.get(t, out.RetryID)
		require.Equal(t, store.ExecPending, r.State)
		require.Equal(t, 2, r.Attempt)
		require.Equal(t, store.TriggerRetry, r.Trigger)
		require.Equal(t, e.ID, r.RetryOf)
		require.Equal(t, planned.FinishedAt.Add(3*time.Second), r.NotBefore)
		require.Zero(t, r.LeaseEpoch)
		require.Empty(t, r.AgentID)
		require.Nil(t, r.Error)
		require.True(t, r.StartedAt.IsZero())
		require.True(t, r.FinishedAt.IsZero())
		require.Equal(t, e.Job, r.Job)
		require.Equal(t, e.Handler, r.Handler)
		require.Equal(t, e.Service, r.Service)
		require.Equal(t, e.Selector, r.Selector)
		require.Equal(t, e.Priority, r.Priority)
		require.Equal(t, e.Payload, r.Payload)
		require.Equal(t, e.ContentType, r.ContentType)
		require.Equal(t, e.Timeout, r.Timeout)
		require.Equal(t, e.Retry, r.Retry)
		require.Equal(t, e.NominalTime, r.NominalTime)
		require.Equal(t, e.TraceContext, r.TraceContext)
		require.Equal(t, e.TraceID, r.TraceID)
		require.Greater(t, r.ID, e.ID)
	}},
	{"TimedOutRetried", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecTimedOut}, retryAfter(0))
		require.True(t, out.Applied)
		require.NotEmpty(t, out.RetryID)
		retried := b.claim(t, "agent-1", 10, time.Minute, job.Handler)
		require.Equal(t, []string{out.RetryID}, ids(retried), "a retry due now is claimable")
	}},
	{"NoRetryWhenPlanSaysNo", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecFailed, Error: &store.ExecError{Message: "bad input", Kind: "Invalid"}}, noRetry)
		require.True(t, out.Applied)
		require.Empty(t, out.RetryID)
		require.Len(t, b.listExecs(t, "work"), 1)
	}},
	{"SucceededAndCancelledNeverRetried", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		ok := b.claimOne(t, job, "agent-1", time.Minute)
		cancelled := b.claimOne(t, job, "agent-1", time.Minute)
		out, err := b.st.CompleteExecutions(b.ctx, []store.Completion{
			{ExecRef: ref(ok), State: store.ExecSucceeded},
			{ExecRef: ref(cancelled), State: store.ExecCancelled, Error: &store.ExecError{Message: "context canceled", Kind: "Cancelled"}},
		}, mustNotRetry(t))
		require.NoError(t, err)
		require.True(t, out[0].Applied)
		require.True(t, out[1].Applied)
		require.Equal(t, store.ExecCancelled, out[1].Execution.State)
		require.Len(t, b.listExecs(t, "work"), 2)
	}},
	{"CancelRequestedNotRetried", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		_, err := b.st.RequestCancel(b.ctx, e.ID, "stop")
		require.NoError(t, err)
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecFailed, Error: &store.ExecError{Message: "interrupted"}}, mustNotRetry(t))
		require.True(t, out.Applied)
		require.Empty(t, out.RetryID)
	}},
	{"Batch", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		a := b.claimOne(t, job, "agent-1", time.Minute)
		c := b.claimOne(t, job, "agent-1", time.Minute)
		results := []store.Completion{
			{ExecRef: ref(a), State: store.ExecSucceeded},
			{ExecRef: store.ExecRef{ID: c.ID, Epoch: 9}, State: store.ExecSucceeded},
			{ExecRef: ref(c), State: store.ExecFailed},
			{ExecRef: ref(a), State: store.ExecFailed}, // a second result for the same attempt
		}
		out, err := b.st.CompleteExecutions(b.ctx, results, retryAfter(time.Hour))
		require.NoError(t, err)
		require.Len(t, out, 4)
		for i, o := range out {
			require.Equal(t, results[i].ExecRef, o.ExecRef)
		}
		require.Equal(t, []bool{true, false, true, false}, []bool{out[0].Applied, out[1].Applied, out[2].Applied, out[3].Applied})
		require.Equal(t, "stale lease epoch 9 (current 1)", out[1].Reason)
		require.Equal(t, "execution already succeeded", out[3].Reason)
		require.NotEmpty(t, out[2].RetryID)
		require.Equal(t, store.ExecSucceeded, b.get(t, a.ID).State)

		empty, err := b.st.CompleteExecutions(b.ctx, nil, nil)
		require.NoError(t, err)
		require.Empty(t, empty)
	}},
}
