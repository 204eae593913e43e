package store

import "time"

// This file holds the scheduling policies a job carries (misfire, overlap, daylight saving
// rules) and the decisions that are the same wherever they are taken: in the scheduler's
// plan and in a store firing a dependent job inside CompleteExecutions.

// MisfireAction is what the scheduler does with nominal times it reached late.
type MisfireAction string

// The misfire actions. The empty action is MisfireRunOnce.
const (
	// MisfireSkip runs none of the missed fires.
	MisfireSkip MisfireAction = "skip"
	// MisfireRunOnce runs the newest missed fire once.
	MisfireRunOnce MisfireAction = "run_once"
	// MisfireCatchUp runs up to MaxCatchUp missed fires that lie inside Window, newest first.
	MisfireCatchUp MisfireAction = "catch_up"
)

// MisfirePolicy says what happens to nominal times the scheduler reaches late (the control
// plane was down or behind). A fire reached at most Grace late is not a misfire.
type MisfirePolicy struct {
	// Action is what is done with missed fires; empty means MisfireRunOnce.
	Action MisfireAction `json:"action,omitempty"`
	// MaxCatchUp bounds the missed fires MisfireCatchUp runs; zero means 10.
	MaxCatchUp int `json:"max_catch_up,omitempty"`
	// Grace is how late a fire may be reached and still run as usual; zero means the
	// scheduler's default (5s).
	Grace time.Duration `json:"grace,omitempty"`
	// Window bounds how old a missed fire MisfireCatchUp runs may be; zero means 1 hour.
	Window time.Duration `json:"window,omitempty"`
}

// OverlapAction is what the scheduler does with a fire while earlier executions still live.
type OverlapAction string

// The overlap actions. The empty action is OverlapAllow.
const (
	// OverlapAllow runs the new fire alongside the live executions.
	OverlapAllow OverlapAction = "allow"
	// OverlapForbid skips the new fire (skipped_overlap) while any execution is live.
	OverlapForbid OverlapAction = "forbid"
	// OverlapReplace cancels the live executions and runs the new fire.
	OverlapReplace OverlapAction = "replace"
	// OverlapAllowN runs the new fire while fewer than MaxConcurrent executions are live.
	OverlapAllowN OverlapAction = "allow_n"
)

// OverlapPolicy says what happens to a fire while earlier executions of the job are live
// (PENDING, ASSIGNED or RUNNING, retries waiting for their backoff included).
type OverlapPolicy struct {
	// Action is what is done; empty means OverlapAllow.
	Action OverlapAction `json:"action,omitempty"`
	// MaxConcurrent is OverlapAllowN's bound; at least 1.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

// Admit decides one fire of a job that has live executions running or waiting: whether it
// runs, and whether the live ones are to be cancelled first.
func (p OverlapPolicy) Admit(live int) (run, replace bool) {
	switch p.Action {
	case OverlapForbid:
		return live == 0, false
	case OverlapReplace:
		return true, live > 0
	case OverlapAllowN:
		return live < max(1, p.MaxConcurrent), false
	}
	return true, false
}

// Constrains reports whether the policy ever depends on the live executions. A job whose
// policy does is planned at its nominal time, not ahead of it, so that the decision sees what
// runs at that time.
func (p OverlapPolicy) Constrains() bool {
	switch p.Action {
	case OverlapForbid, OverlapReplace, OverlapAllowN:
		return true
	}
	return false
}

// SpringForward is what a cron schedule does with a local time that a daylight saving change
// skips.
type SpringForward string

// The spring-forward rules. The empty rule is SpringForwardFirstValid.
const (
	// SpringForwardFirstValid fires at the first valid instant after the skipped time: the
	// instant the clocks jumped.
	SpringForwardFirstValid SpringForward = "first_valid"
	// SpringForwardSkip does not fire for the skipped time.
	SpringForwardSkip SpringForward = "skip"
)

// FallBack is what a cron schedule does with a local time that a daylight saving change
// repeats.
type FallBack string

// The fall-back rules. The empty rule is FallBackOnce.
const (
	// FallBackOnce fires once, at the first of the two instants.
	FallBackOnce FallBack = "once"
	// FallBackBoth fires at both instants.
	FallBackBoth FallBack = "both"
)

// Error kinds of executions that the control plane ended for a timeout of its own.
const (
	// KindScheduleToStartTimeout: no agent took the execution within the job's
	// schedule-to-start timeout after it was due.
	KindScheduleToStartTimeout = "ScheduleToStartTimeout"
	// KindScheduleToCloseTimeout: the fire was not done within the job's schedule-to-close
	// timeout after its nominal time.
	KindScheduleToCloseTimeout = "ScheduleToCloseTimeout"
)

// DueJob is a job claimed for planning with what the store read about it in the same
// transaction.
type DueJob struct {
	Job
	// Live is how many of the job's executions are PENDING, ASSIGNED or RUNNING.
	Live int
}

// UpstreamResult is the result of an execution that a dependent execution ran after.
type UpstreamResult struct {
	// Job is the upstream job's name.
	Job string `json:"job"`
	// ExecutionID is the upstream execution.
	ExecutionID string `json:"execution_id"`
	// Output and ContentType are its result.
	Output      []byte `json:"output,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// UpstreamIDs returns the ids of the upstream executions, in order.
func (e Execution) UpstreamIDs() []string {
	if len(e.Upstream) == 0 {
		return nil
	}
	ids := make([]string, len(e.Upstream))
	for i, u := range e.Upstream {
		ids[i] = u.ExecutionID
	}
	return ids
}
