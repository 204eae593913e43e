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
//   - times reached later than the misfire grace are missed, except those the job's misfire
//     policy runs (misfire.go);
//   - the rest are offered to the job's overlap policy, which runs them (dispatched, with
//     an execution that may start at its nominal time plus the schedule's jitter), runs them
//     in place of the live executions (replace), or skips them (skipped_overlap). A job
//     whose overlap policy depends on what is live is never claimed ahead, so that the
//     decision sees what runs at the nominal time.
func Plan(cfg PlanConfig, due store.DueJob, now time.Time, horizon time.Duration) store.FirePlan {
	job := due.Job
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
	if job.Paused || job.Overlap.Constrains() {
		limit = now
	}
	var nominal []time.Time
	next := job.NextFireAt
	for !next.IsZero() && !next.After(limit) && len(nominal) < cfg.MaxFiresPerPlan {
		nominal = append(nominal, next)
		next = sched.Next(next)
	}
	paused := func(t time.Time) bool { return job.Paused || t.Before(job.ResumedAt) }
	runs := misfireRuns(misfireInput{
		policy:  job.Misfire,
		grace:   cfg.MisfireGrace,
		sched:   sched,
		nominal: nominal,
		next:    next,
		paused:  paused,
		resumed: job.ResumedAt,
		now:     now,
	})

	live := due.Live
	plan := store.FirePlan{NextFireAt: next, Fires: make([]store.PlannedFire, 0, len(nominal))}
	for i, t := range nominal {
		fire := store.PlannedFire{NominalTime: t}
		switch {
		case paused(t):
			fire.Outcome = store.FireSkippedPaused
		case !runs[i]:
			fire.Outcome = store.FireMissed
		default:
			run, replace := job.Overlap.Admit(live)
			if !run {
				fire.Outcome = store.FireSkippedOverlap
				break
			}
			exec := NewExecution(job, t, store.TriggerSchedule)
			exec.NotBefore = t.Add(Jitter(job.Name, t, scheduleJitter(job.Schedule)))
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

// NewExecution returns the first attempt of a job's execution for nominal time t. It copies
// what the execution needs from the job, so later changes to the job do not affect it.
func NewExecution(job store.Job, t time.Time, trigger store.TriggerKind) store.Execution {
	return store.NewExecution(job, t, trigger)
}

// SpecOf converts a stored schedule to a schedule.Spec.
func SpecOf(s store.Schedule) schedule.Spec {
	return schedule.Spec{
		Cron: s.Cron, Interval: s.Interval, At: s.At, Timezone: s.Timezone,
		SpringForward: schedule.SpringForward(s.SpringForward), FallBack: schedule.FallBack(s.FallBack),
	}
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
