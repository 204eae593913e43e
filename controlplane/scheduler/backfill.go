package scheduler

import (
	"time"

	"github.com/tockhq/tock/controlplane/schedule"
	"github.com/tockhq/tock/controlplane/store"
)

// MaxBackfill is the most nominal times one backfill may cover.
const MaxBackfill = 10000

// BackfillTimes returns the nominal times of a job's schedule in [start, end), at most
// limit of them; more reports whether the range holds more than limit.
func BackfillTimes(job store.Job, start, end time.Time, limit int) (times []time.Time, more bool, err error) {
	if job.Schedule == nil {
		return nil, false, nil
	}
	sched, err := schedule.Parse(SpecOf(*job.Schedule), job.CreatedAt)
	if err != nil {
		return nil, false, err
	}
	for t := sched.Next(start.Add(-time.Nanosecond)); !t.IsZero() && t.Before(end); t = sched.Next(t) {
		if len(times) == limit {
			return times, true, nil
		}
		times = append(times, t)
	}
	return times, false, nil
}

// PlanBackfill decides the fires of a backfill of [start, end) of a job at now: every
// nominal time of its schedule in the range, at most MaxBackfill, offered in order to its
// overlap policy as the scheduler would, each with an execution due at once
// (TriggerBackfill) whose schedule-to-close timeout counts from now. Neither the misfire
// policy nor pausing applies: a backfill is asked for. NextFireAt is left zero; a backfill
// does not move the job's schedule. It is pure.
func PlanBackfill(due store.DueJob, start, end, now time.Time) store.FirePlan {
	times, _, err := BackfillTimes(due.Job, start, end, MaxBackfill)
	if err != nil {
		return store.FirePlan{}
	}
	live := due.Live
	plan := store.FirePlan{Fires: make([]store.PlannedFire, 0, len(times))}
	for _, t := range times {
		fire := store.PlannedFire{NominalTime: t, Outcome: store.FireSkippedOverlap}
		if run, replace := due.Overlap.Admit(live); run {
			exec := NewExecution(due.Job, t, store.TriggerBackfill)
			if due.ScheduleToCloseTimeout > 0 {
				exec.CloseDeadline = now.Add(due.ScheduleToCloseTimeout)
			}
			fire.Outcome, fire.Execution, fire.Replace = store.FireDispatched, &exec, replace
			if replace {
				live = 0
			}
			live++
		}
		plan.Fires = append(plan.Fires, fire)
	}
	return plan
}
