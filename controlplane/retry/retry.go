// Package retry decides whether a failed attempt is retried and when, from the job's retry
// policy. It is pure: the store calls it inside transactions that may be retried.
package retry

import (
	"math"
	"slices"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// Defaults applied to a job that does not set a retry policy, or leaves a field zero.
const (
	DefaultMaxAttempts        = 3
	DefaultInitialBackoff     = time.Second
	DefaultBackoffCoefficient = 2.0
	DefaultMaxBackoff         = time.Minute
)

// WithDefaults fills the zero fields of p with the defaults.
func WithDefaults(p store.RetryPolicy) store.RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialBackoff == 0 {
		p.InitialBackoff = DefaultInitialBackoff
	}
	if p.BackoffCoefficient == 0 {
		p.BackoffCoefficient = DefaultBackoffCoefficient
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	return p
}

// Plan is a store.RetryPlan: it retries a FAILED, TIMED_OUT or LOST attempt while attempts
// remain, unless the error is marked non-retryable, its kind is listed as non-retryable, or
// it is one of the control plane's own timeouts (schedule-to-start, schedule-to-close).
// The next attempt waits InitialBackoff × BackoffCoefficient^(attempt-1), capped at
// MaxBackoff and shortened by the policy's jitter (Jittered), and at least the error's
// RetryAfter, counted from the attempt's finish. No retry is planned that could not start
// before the fire's schedule-to-close deadline.
func Plan(exec store.Execution) (time.Time, bool) {
	switch exec.State {
	case store.ExecFailed, store.ExecTimedOut, store.ExecLost:
	default:
		return time.Time{}, false
	}
	p := WithDefaults(exec.Retry)
	if exec.Attempt >= p.MaxAttempts {
		return time.Time{}, false
	}
	var after time.Duration
	if e := exec.Error; e != nil {
		if exec.State == store.ExecFailed && !e.Retryable {
			return time.Time{}, false
		}
		if e.Kind != "" && slices.Contains(p.NonRetryableKinds, e.Kind) {
			return time.Time{}, false
		}
		if store.IsControlPlaneTimeout(e.Kind) {
			return time.Time{}, false
		}
		after = e.RetryAfter
	}
	next := exec.FinishedAt.Add(max(Jittered(p, exec.Attempt, exec.ID), after))
	if !exec.CloseDeadline.IsZero() && !next.Before(exec.CloseDeadline) {
		return time.Time{}, false
	}
	return next, true
}

// Backoff returns the delay after the given attempt (from 1) under policy p.
func Backoff(p store.RetryPolicy, attempt int) time.Duration {
	p = WithDefaults(p)
	d := float64(p.InitialBackoff) * math.Pow(p.BackoffCoefficient, float64(attempt-1))
	if d > float64(p.MaxBackoff) || math.IsInf(d, 0) || math.IsNaN(d) {
		return p.MaxBackoff
	}
	return time.Duration(d)
}
