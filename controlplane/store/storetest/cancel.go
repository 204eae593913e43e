package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

var cancelTests = []test{
	{"Pending", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.createExec(t, job, nil)
		before := b.now(t)
		got, err := b.st.RequestCancel(b.ctx, e.ID, "no longer needed")
		require.NoError(t, err)
		require.Equal(t, store.ExecCancelled, got.State)
		require.Equal(t, &store.ExecError{Message: "no longer needed", Kind: "Cancelled"}, got.Error)
		require.False(t, got.FinishedAt.Before(before))
		require.False(t, got.CancelRequested)
		require.Equal(t, got, b.get(t, e.ID))
		require.Empty(t, b.claim(t, "agent-1", 10, time.Minute, job.Handler), "a cancelled execution is not claimed")
	}},
	{"AssignedAndRunning", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		assigned := b.claimOne(t, job, "agent-1", time.Minute)
		running := b.claimOne(t, job, "agent-1", time.Minute)
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(running)}, time.Time{}))
		untouched := b.claimOne(t, job, "agent-1", time.Minute)
		elsewhere := b.claimOne(t, job, "agent-2", time.Minute)

		for _, e := range []store.Execution{assigned, running, elsewhere} {
			got, err := b.st.RequestCancel(b.ctx, e.ID, "stop")
			require.NoError(t, err)
			require.True(t, got.CancelRequested)
			require.True(t, got.State == store.ExecAssigned || got.State == store.ExecRunning, got.State)
			require.Equal(t, e.LeaseEpoch, got.LeaseEpoch)
			require.Nil(t, got.Error)
			require.True(t, got.FinishedAt.IsZero())
			require.Equal(t, got, b.get(t, e.ID))
		}

		refs, err := b.st.CancelRequested(b.ctx, []string{"agent-1"})
		require.NoError(t, err)
		require.ElementsMatch(t, []store.ExecRef{ref(assigned), ref(running)}, refs)
		refs, err = b.st.CancelRequested(b.ctx, []string{"agent-1", "agent-2", "agent-3"})
		require.NoError(t, err)
		require.ElementsMatch(t, []store.ExecRef{ref(assigned), ref(running), ref(elsewhere)}, refs)
		refs, err = b.st.CancelRequested(b.ctx, []string{"agent-3"})
		require.NoError(t, err)
		require.Empty(t, refs)
		refs, err = b.st.CancelRequested(b.ctx, nil)
		require.NoError(t, err)
		require.Empty(t, refs)
		require.False(t, b.get(t, untouched.ID).CancelRequested)

		// Once the agent reports, the flag no longer asks for anything.
		out := b.complete(t, store.Completion{ExecRef: ref(running), State: store.ExecCancelled}, mustNotRetry(t))
		require.True(t, out.Applied)
		refs, err = b.st.CancelRequested(b.ctx, []string{"agent-1"})
		require.NoError(t, err)
		require.Equal(t, []store.ExecRef{ref(assigned)}, refs)
	}},
	{"Finished", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		done := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecSucceeded}, nil).Execution
		got, err := b.st.RequestCancel(b.ctx, e.ID, "too late")
		require.NoError(t, err)
		require.Equal(t, done, got, "a finished execution is returned unchanged")
		require.Equal(t, done, b.get(t, e.ID))

		pending := b.createExec(t, job, nil)
		first, err := b.st.RequestCancel(b.ctx, pending.ID, "once")
		require.NoError(t, err)
		second, err := b.st.RequestCancel(b.ctx, pending.ID, "twice")
		require.NoError(t, err)
		require.Equal(t, first, second)
	}},
	{"Unknown", func(t *testing.T, b *bundle) {
		_, err := b.st.RequestCancel(b.ctx, "0190f3a1-7c2b-7d4e-8f00-0000000000ff", "stop")
		require.ErrorIs(t, err, store.ErrNotFound)
	}},
	{"InFlight", func(t *testing.T, b *bundle) {
		empty, err := b.st.InFlight(b.ctx)
		require.NoError(t, err)
		require.Empty(t, empty)

		job := b.createJob(t, newJob("work"))
		b.claimOne(t, job, "agent-1", time.Minute)
		running := b.claimOne(t, job, "agent-1", time.Minute)
		require.NoError(t, b.st.MarkStarted(b.ctx, []store.ExecRef{ref(running)}, time.Time{}))
		b.claimOne(t, job, "agent-2", time.Minute)
		done := b.claimOne(t, job, "agent-3", time.Minute)
		b.complete(t, store.Completion{ExecRef: ref(done), State: store.ExecSucceeded}, nil)
		released := b.claimOne(t, job, "agent-3", time.Minute)
		require.NoError(t, b.st.ReleaseExecutions(b.ctx, []store.ExecRef{ref(released)}))
		b.createExec(t, job, nil) // pending: not in flight

		counts, err := b.st.InFlight(b.ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int{"agent-1": 2, "agent-2": 1}, counts)
	}},
}
