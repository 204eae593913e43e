package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrDependency is matched (errors.Is) by every DependencyError.
var ErrDependency = errors.New("invalid dependency")

// DependencyError is a job's DependsOn that CreateJob or UpdateJob refused: it names a job
// that does not exist, or it closes a cycle.
type DependencyError struct {
	// Job is the job being stored.
	Job string
	// Missing is the upstream job that does not exist, when that is the fault.
	Missing string
	// Cycle is the cycle the dependency closes, from Job back to Job, when that is the fault.
	Cycle []string
}

func (e *DependencyError) Error() string {
	if len(e.Cycle) > 0 {
		return fmt.Sprintf("job %q would depend on itself: %s", e.Job, strings.Join(e.Cycle, " → "))
	}
	return fmt.Sprintf("job %q depends on %q, which does not exist", e.Job, e.Missing)
}

// Is makes errors.Is(err, ErrDependency) hold.
func (e *DependencyError) Is(target error) bool { return target == ErrDependency }

// NewExecution returns the first attempt of a job's execution for nominal time t. It copies
// what the execution needs from the job, so later changes to the job do not affect it. It
// may start at t.
func NewExecution(job Job, t time.Time, trigger TriggerKind) Execution {
	e := Execution{
		Job:                    job.Name,
		Handler:                job.Handler,
		Service:                job.Service,
		Selector:               job.Selector,
		Attempt:                1,
		State:                  ExecPending,
		Trigger:                trigger,
		NominalTime:            t,
		NotBefore:              t,
		Priority:               job.Priority,
		Payload:                job.Payload,
		ContentType:            job.ContentType,
		Timeout:                job.Timeout,
		Retry:                  job.Retry,
		ScheduleToStartTimeout: job.ScheduleToStartTimeout,
		Route:                  Route{Routing: job.Routing},
	}
	if job.ScheduleToCloseTimeout > 0 {
		e.CloseDeadline = t.Add(job.ScheduleToCloseTimeout)
	}
	return e
}

// PlanDependent decides the fire of a dependent job for a nominal time once every job it
// depends on has succeeded for that time: skipped_paused when the job is paused, otherwise
// as its overlap policy admits it, with an execution that carries the upstream results and
// may start now. Its schedule-to-close timeout counts from now, when it was triggered. A
// store calls it inside the transaction that applied the last upstream result; it is pure.
func PlanDependent(due DueJob, nominal time.Time, upstream []UpstreamResult, now time.Time) PlannedFire {
	if due.Paused {
		return PlannedFire{NominalTime: nominal, Outcome: FireSkippedPaused}
	}
	run, replace := due.Overlap.Admit(due.Live)
	if !run {
		return PlannedFire{NominalTime: nominal, Outcome: FireSkippedOverlap}
	}
	e := NewExecution(due.Job, nominal, TriggerDependency)
	e.NotBefore = now
	e.Upstream = upstream
	if due.ScheduleToCloseTimeout > 0 {
		e.CloseDeadline = now.Add(due.ScheduleToCloseTimeout)
	}
	return PlannedFire{NominalTime: nominal, Outcome: FireDispatched, Execution: &e, Replace: replace}
}

// TimeoutError returns the error an execution ends with when the control plane times it
// out: kind is KindScheduleToStartTimeout or KindScheduleToCloseTimeout.
func TimeoutError(kind string) ExecError {
	msg := "timed out"
	switch kind {
	case KindScheduleToStartTimeout:
		msg = "no agent took it within the job's schedule-to-start timeout"
	case KindScheduleToCloseTimeout:
		msg = "not done within the job's schedule-to-close timeout after its nominal time"
	}
	return ExecError{Message: msg, Kind: kind}
}

// IsControlPlaneTimeout reports whether an error kind is one of the control plane's own
// timeouts, which are never retried.
func IsControlPlaneTimeout(kind string) bool {
	return kind == KindScheduleToStartTimeout || kind == KindScheduleToCloseTimeout
}

// WithCloseTimeout applies a schedule-to-close timeout recorded while the execution ran (its
// cancellation was requested with a timeout error preset) to the result its agent reported
// afterwards: any outcome but success becomes TIMED_OUT with the preset error. cur is the
// execution as stored before the result.
func (c Completion) WithCloseTimeout(cur Execution) Completion {
	if !cur.CancelRequested || cur.Error == nil || cur.Error.Kind != KindScheduleToCloseTimeout || c.State == ExecSucceeded {
		return c
	}
	c.State = ExecTimedOut
	preset := *cur.Error
	c.Error = &preset
	return c
}

// FindCycle returns a cycle through start in a dependency graph (edges from a job to the
// jobs it depends on), as the path start → … → start, or nil when there is none. It visits
// each job once.
func FindCycle(start string, edges map[string][]string) []string {
	parent := map[string]string{}
	queue := []string{start}
	seen := map[string]bool{start: true}
	for len(queue) > 0 {
		job := queue[0]
		queue = queue[1:]
		for _, up := range edges[job] {
			if up == start {
				path := []string{start}
				for at := job; at != start; at = parent[at] {
					path = append(path, at)
				}
				path = append(path, start)
				// path runs backwards from the end: start, job, …, start.
				for i, j := 1, len(path)-2; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return path
			}
			if !seen[up] {
				seen[up] = true
				parent[up] = job
				queue = append(queue, up)
			}
		}
	}
	return nil
}
