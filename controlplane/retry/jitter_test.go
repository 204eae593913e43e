package retry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/retry"
	"github.com/tockhq/tock/controlplane/store"
)

// TestBackoffSchedule walks a retry chain on an injected finish time: exponential growth,
// the cap, and jitter that only ever shortens a delay and is the same on every call.
func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	finished := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exp := store.RetryPolicy{MaxAttempts: 6, InitialBackoff: time.Second, BackoffCoefficient: 2, MaxBackoff: 10 * time.Second}
	fixed := store.RetryPolicy{MaxAttempts: 6, InitialBackoff: 3 * time.Second, BackoffCoefficient: 1, MaxBackoff: time.Minute}
	var gaps, fixedGaps []time.Duration
	for attempt := 1; attempt < 6; attempt++ {
		e := store.Execution{ID: "x", State: store.ExecFailed, Attempt: attempt, FinishedAt: finished, Retry: exp, Error: &store.ExecError{Retryable: true}}
		at, ok := retry.Plan(e)
		require.True(t, ok)
		gaps = append(gaps, at.Sub(finished))
		e.Retry = fixed
		at, ok = retry.Plan(e)
		require.True(t, ok)
		fixedGaps = append(fixedGaps, at.Sub(finished))
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second}, gaps)
	require.Equal(t, []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}, fixedGaps)
	_, ok := retry.Plan(store.Execution{State: store.ExecFailed, Attempt: 6, FinishedAt: finished, Retry: exp, Error: &store.ExecError{Retryable: true}})
	require.False(t, ok, "attempts exhausted")

	jittery := exp
	jittery.Jitter = 0.5
	spread := map[time.Duration]bool{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		d := retry.Jittered(jittery, 3, id)
		require.Equal(t, d, retry.Jittered(jittery, 3, id), "deterministic per execution")
		require.LessOrEqual(t, d, 4*time.Second)
		require.GreaterOrEqual(t, d, 2*time.Second, "shortened by at most half")
		spread[d] = true
	}
	require.Greater(t, len(spread), 4, "different executions spread out")
	require.Equal(t, 4*time.Second, retry.Jittered(exp, 3, "a"), "no jitter, no change")
}

func TestPlanStopsAtControlPlaneTimeouts(t *testing.T) {
	t.Parallel()
	finished := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := store.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Second}
	for _, kind := range []string{store.KindScheduleToStartTimeout, store.KindScheduleToCloseTimeout} {
		_, ok := retry.Plan(store.Execution{State: store.ExecTimedOut, Attempt: 1, FinishedAt: finished, Retry: policy, Error: &store.ExecError{Kind: kind}})
		require.False(t, ok, kind)
	}
	// A retry that could not start before the fire's schedule-to-close deadline is not made.
	e := store.Execution{State: store.ExecTimedOut, Attempt: 1, FinishedAt: finished, Retry: policy, CloseDeadline: finished.Add(500 * time.Millisecond)}
	_, ok := retry.Plan(e)
	require.False(t, ok)
	e.CloseDeadline = finished.Add(2 * time.Second)
	at, ok := retry.Plan(e)
	require.True(t, ok)
	require.Equal(t, finished.Add(time.Second), at)
}

func TestFraction(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"", "a", "0190c1de-0002-7000-8000-000000000002"} {
		f := retry.Fraction(k)
		require.GreaterOrEqual(t, f, 0.0)
		require.Less(t, f, 1.0)
	}
}
