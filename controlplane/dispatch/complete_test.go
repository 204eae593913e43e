package dispatch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/sqlite"
)

// contendedStore is a real store whose CompleteExecutions gives up, as a contended database
// does, on batches larger than limit.
type contendedStore struct {
	store.Store
	limit int

	mu      sync.Mutex
	batches []int // the size of every CompleteExecutions call
}

func (s *contendedStore) CompleteExecutions(ctx context.Context, cs []store.Completion, plan store.RetryPlan) ([]store.CompletionOutcome, error) {
	s.mu.Lock()
	s.batches = append(s.batches, len(cs))
	s.mu.Unlock()
	if len(cs) > s.limit {
		return nil, fmt.Errorf("complete executions: %w: gave up after 50 attempts", store.ErrContended)
	}
	return s.Store.CompleteExecutions(ctx, cs, plan)
}

func TestCompleteInPartsSplitsContendedBatches(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir()+"/tock.db")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	_, err = st.CreateJob(ctx, store.Job{Name: "nap", Handler: "sleep", Payload: []byte(`{}`)})
	require.NoError(t, err)
	const n = 11
	for range n {
		_, err := st.CreateExecution(ctx, store.Execution{Job: "nap", Handler: "sleep"})
		require.NoError(t, err)
	}
	claimed, err := st.ClaimExecutions(ctx, store.ClaimParams{
		Handlers: []string{"sleep"}, Limit: n, Lease: time.Minute,
		Pick: func(c []store.Execution) []store.Assignment {
			out := make([]store.Assignment, len(c))
			for i, e := range c {
				out[i] = store.Assignment{ExecutionID: e.ID, AgentID: "agent-1"}
			}
			return out
		},
	})
	require.NoError(t, err)
	require.Len(t, claimed, n)
	completions := make([]store.Completion, n)
	for i, e := range claimed {
		completions[i] = store.Completion{ExecRef: store.ExecRef{ID: e.ID, Epoch: e.LeaseEpoch}, State: store.ExecSucceeded}
	}

	cs := &contendedStore{Store: st, limit: 3}
	outcomes, err := completeInParts(ctx, cs, completions)
	require.NoError(t, err)
	require.Len(t, outcomes, n)
	for i, o := range outcomes {
		require.Equal(t, claimed[i].ID, o.ID, "outcomes keep the order of the completions")
		require.True(t, o.Applied)
		require.Equal(t, store.ExecSucceeded, o.Execution.State)
	}
	// 11 → 5 + 6 → (2 + 3) + (3 + 3): every batch over the limit is tried once, then halved.
	require.Equal(t, []int{11, 5, 2, 3, 6, 3, 3}, cs.batches)

	// Down to one result, the contention is returned.
	cs = &contendedStore{Store: st, limit: 0}
	_, err = completeInParts(ctx, cs, completions[:2])
	require.ErrorIs(t, err, store.ErrContended)
	require.Equal(t, []int{2, 1}, cs.batches)
}
