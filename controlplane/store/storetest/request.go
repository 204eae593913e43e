package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// createOnce calls CreateExecutionOnce with a manual execution of job, changed by edit
// when it is not nil.
func (b *bundle) createOnce(t *testing.T, job store.Job, key string, edit func(e *store.Execution)) (store.Execution, bool) {
	t.Helper()
	e := newExec(job)
	if edit != nil {
		edit(&e)
	}
	got, created, err := b.st.CreateExecutionOnce(b.ctx, e, key)
	require.NoError(t, err)
	return got, created
}

// claimOnly claims the job's one pending execution for agent-1, which must be id.
func (b *bundle) claimOnly(t *testing.T, job store.Job, id string) store.Execution {
	t.Helper()
	claimed := b.claim(t, "agent-1", 10, time.Minute, job.Handler)
	require.Len(t, claimed, 1)
	require.Equal(t, id, claimed[0].ID)
	return claimed[0]
}

var requestTests = []test{
	{"CreatesOnce", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("manual"))
		other := b.createJob(t, newJob("other"))
		first, created := b.createOnce(t, job, "req-1", func(e *store.Execution) { e.Payload = []byte(`{"n":1}`) })
		require.True(t, created)
		require.Equal(t, store.ExecPending, first.State)

		again, created := b.createOnce(t, job, "req-1", func(e *store.Execution) { e.Payload = []byte(`{"n":2}`) })
		require.False(t, created, "a repeated key creates nothing")
		require.Equal(t, first, again, "and returns the first execution, payload and all")

		second, created := b.createOnce(t, job, "req-2", nil)
		require.True(t, created)
		require.NotEqual(t, first.ID, second.ID)
		elsewhere, created := b.createOnce(t, other, "req-1", nil)
		require.True(t, created, "keys are per job")
		require.NotEqual(t, first.ID, elsewhere.ID)
		require.Len(t, b.listExecs(t, job.Name), 2)
	}},
	{"ReturnsCurrentState", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("manual"))
		first, _ := b.createOnce(t, job, "req", nil)
		b.claimOnly(t, job, first.ID)
		again, created := b.createOnce(t, job, "req", nil)
		require.False(t, created)
		require.Equal(t, store.ExecAssigned, again.State, "a repeated call sees how far the execution got")
		require.Equal(t, "agent-1", again.AgentID)
	}},
	{"UnknownJob", func(t *testing.T, b *bundle) {
		_, _, err := b.st.CreateExecutionOnce(b.ctx, newExec(newJob("nope")), "req")
		require.ErrorIs(t, err, store.ErrNotFound)
	}},
	{"Concurrent", func(t *testing.T, b *bundle) {
		// Calls racing with one key (a client retrying before its first call returned)
		// make one execution between them, whatever the isolation level.
		job := b.createJob(t, newJob("manual"))
		const callers = 8
		for round := range 3 {
			key := fmt.Sprintf("race-%d", round)
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				ids     = map[string]bool{}
				created int
				errs    = make(chan error, callers)
			)
			for range callers {
				wg.Go(func() {
					e, c, err := b.st.CreateExecutionOnce(b.ctx, newExec(job), key)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					defer mu.Unlock()
					ids[e.ID] = true
					if c {
						created++
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.Len(t, ids, 1, "round %d: every caller gets the same execution", round)
			require.Equal(t, 1, created, "round %d: exactly one caller created it", round)
		}
		require.Len(t, b.listExecs(t, job.Name), 3)
	}},
	{"KeptWithTheExecution", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		first, _ := b.createOnce(t, job, "req", nil)
		claimed := b.claimOnly(t, job, first.ID)
		b.complete(t, store.Completion{ExecRef: ref(claimed), State: store.ExecSucceeded}, nil)

		again, created := b.createOnce(t, job, "req", nil)
		require.False(t, created, "the key outlives the execution's run")
		require.Equal(t, store.ExecSucceeded, again.State)

		b.pass(t, pruneWait)
		require.Equal(t, 1, b.pruneExecs(t, pruneAge, 10))
		fresh, created := b.createOnce(t, job, "req", nil)
		require.True(t, created, "a pruned execution takes its key with it")
		require.NotEqual(t, first.ID, fresh.ID)

		require.NoError(t, b.st.DeleteJob(b.ctx, job.Name))
		job = b.createJob(t, newJob("work"))
		_, created = b.createOnce(t, job, "req", nil)
		require.True(t, created, "a deleted job's keys go with it")
	}},
}
