package retry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/retry"
	"github.com/tockhq/tock/controlplane/store"
)

func TestPlan(t *testing.T) {
	t.Parallel()
	finished := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := store.RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Second, BackoffCoefficient: 3, MaxBackoff: 5 * time.Second, NonRetryableKinds: []string{"Fatal"}}
	tests := []struct {
		name    string
		exec    store.Execution
		wantOK  bool
		wantGap time.Duration
	}{
		{"first failure", store.Execution{State: store.ExecFailed, Attempt: 1, Error: &store.ExecError{Retryable: true}}, true, time.Second},
		{"second failure grows", store.Execution{State: store.ExecFailed, Attempt: 2, Error: &store.ExecError{Retryable: true}}, true, 3 * time.Second},
		{"capped", store.Execution{State: store.ExecFailed, Attempt: 3, Error: &store.ExecError{Retryable: true}}, true, 5 * time.Second},
		{"attempts exhausted", store.Execution{State: store.ExecFailed, Attempt: 4, Error: &store.ExecError{Retryable: true}}, false, 0},
		{"not retryable", store.Execution{State: store.ExecFailed, Attempt: 1, Error: &store.ExecError{Retryable: false}}, false, 0},
		{"non-retryable kind", store.Execution{State: store.ExecFailed, Attempt: 1, Error: &store.ExecError{Retryable: true, Kind: "Fatal"}}, false, 0},
		{"retry after wins", store.Execution{State: store.ExecFailed, Attempt: 1, Error: &store.ExecError{Retryable: true, RetryAfter: 4 * time.Second}}, true, 4 * time.Second},
		{"timed out", store.Execution{State: store.ExecTimedOut, Attempt: 1}, true, time.Second},
		{"lost", store.Execution{State: store.ExecLost, Attempt: 1, Error: &store.ExecError{Retryable: true, Kind: "LeaseExpired"}}, true, time.Second},
		{"cancelled", store.Execution{State: store.ExecCancelled, Attempt: 1}, false, 0},
		{"succeeded", store.Execution{State: store.ExecSucceeded, Attempt: 1}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.exec.Retry = policy
			tt.exec.FinishedAt = finished
			at, ok := retry.Plan(tt.exec)
			require.Equal(t, tt.wantOK, ok)
			if ok {
				require.Equal(t, tt.wantGap, at.Sub(finished))
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	p := retry.WithDefaults(store.RetryPolicy{})
	require.Equal(t, retry.DefaultMaxAttempts, p.MaxAttempts)
	require.Equal(t, time.Minute, retry.Backoff(p, 100))
}
