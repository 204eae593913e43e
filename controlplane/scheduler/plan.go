package scheduler

import (
	"time"

	"github.com/tockhq/tock/controlplane/schedule"
	"github.com/tockhq/tock/controlplane/store"
)

// PlanConfig tunes how due jobs are planned.
type PlanConfig struct {
	// MisfireGrace is how late a fire may start and still run; older unstarted fires are
	// recorded as missed, except that the newest one always runs ("run once"). Default 5s.
	MisfireGrace time.Duration
	// MaxFiresPerPlan bounds the nominal times one plan records, so that a job far behind
	// catches up over several rounds. Default 1000.
	MaxFiresPerPlan int
}

func (c PlanConfig) withDefaults() PlanConfig {
	if c.MisfireGrace <= 0 {
		c.MisfireGrace = 5 * time.Second
	}
	if c.MaxFiresPerPlan <= 0 {
		c.MaxFiresPerPlan = 1000
	}
	return c
}

// Plan decides the fires of one due job at database time now, claiming fires up to
// now+horizon. It is a pure function of its arguments.
//
// Every nominal time from the job's NextFireAt on is accounted for, in order, up to
// MaxFiresPerPlan per call:
//
//   - a paused job records the times reached (at or before now) as skipped_paused and is
//     never claimed ahead;
//   - times before the job's ResumedAt (reached while it was paused, not recorded yet) are
//     skipped_paused too;
//   - past-due times older than MisfireGrace are missed, except that the newest past-due
//     time always runs ("run once");
//   - the rest dispatch, each with an execution that may start at its nominal time.
func Plan(cfg PlanConfig, job store.Job, now time.Time, horizon time.Duration) store.FirePlan {
	cfg = cfg.withDefaults()
	if job.Schedule == nil || job.NextFireAt.IsZero() {
		return store.FirePlan{}
	}
	sched, err := schedule.Parse(SpecOf(*job.Schedule), job.CreatedAt)
	if err != nil {
		// Stored schedules were validated on the way in; one that no longer parses (a time
		// zone removed from the zone database, say) stops firing rather than firing wrongly.
		return store.FirePlan{}
	}
	limit := now.Add(horizon)
	if job.Paused {
		limit = now
	}
	var nominal []time.Time
	next := job.NextFireAt
	for !next.IsZero() && !next.After(limit) && len(nominal) < cfg.MaxFiresPerPlan {
		nominal = append(nominal, next)
		next = sched.Next(next)
	}
	paused := func(t time.Time) bool { return job.Paused || t.Before(job.ResumedAt) }

	// Past-due fires older than the grace are missed, but the newest past-due fire always
	// runs, so that a job that fell behind runs once rather than not at all.
	newestPast := -1
	for i, t := range nominal {
		if !t.After(now) && !paused(t) {
			newestPast = i
		}
	}
	plan := store.FirePlan{NextFireAt: next, Fires: make([]store.PlannedFire, 0, len(nominal))}
	for i, t := range nominal {
		switch {
		case paused(t):
			plan.Fires = append(plan.Fires, store.PlannedFire{NominalTime: t, Outcome: store.FireSkippedPaused})
		case now.Sub(t) > cfg.MisfireGrace && i != newestPast:
			plan.Fires = append(plan.Fires, store.PlannedFire{NominalTime: t, Outcome: store.FireMissed})
		default:
			exec := NewExecution(job, t, store.TriggerSchedule)
			plan.Fires = append(plan.Fires, store.PlannedFire{NominalTime: t, Outcome: store.FireDispatched, Execution: &exec})
		}
	}
	return plan
}

// NewExecution returns the first attempt of a job's execution for nominal time t. It copies
// what the execution needs from the job, so later changes to the job do not affect it.
func NewExecution(job store.Job, t time.Time, trigger store.TriggerKind) store.Execution {
	return store.Execution{
		Job:         job.Name,
		Handler:     job.Handler,
		Service:     job.Service,
		Selector:    job.Selector,
		Attempt:     1,
		State:       store.ExecPending,
		Trigger:     trigger,
		NominalTime: t,
		NotBefore:   t,
		Priority:    job.Priority,
		Payload:     job.Payload,
		ContentType: job.ContentType,
		Timeout:     job.Timeout,
		Retry:       job.Retry,
	}
}

// SpecOf converts a stored schedule to a schedule.Spec.
func SpecOf(s store.Schedule) schedule.Spec {
	return schedule.Spec{Cron: s.Cron, Interval: s.Interval, At: s.At, Timezone: s.Timezone}
}

// FirstFire returns the first fire time of a schedule after t, or the zero time when it has
// none. A schedule that does not parse has none.
func FirstFire(s *store.Schedule, anchor, t time.Time) time.Time {
	if s == nil {
		return time.Time{}
	}
	sched, err := schedule.Parse(SpecOf(*s), anchor)
	if err != nil {
		return time.Time{}
	}
	return sched.Next(t)
}
