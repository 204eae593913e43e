package scheduler

import (
	"time"

	"github.com/tockhq/tock/controlplane/schedule"
	"github.com/tockhq/tock/controlplane/store"
)

// Defaults of a misfire policy's zero fields.
const (
	DefaultMaxCatchUp    = 10
	DefaultCatchUpWindow = time.Hour
)

// misfireInput is what misfireRuns decides from.
type misfireInput struct {
	policy store.MisfirePolicy
	// grace is the scheduler's default grace, for a policy without one.
	grace time.Duration
	sched schedule.Schedule
	// nominal are the times this plan records, oldest first; next is the schedule's time
	// after the last of them (zero when there is none).
	nominal []time.Time
	next    time.Time
	// paused tells the times that are skipped_paused, whatever the policy; resumed is the
	// job's ResumedAt, before which every time is paused.
	paused  func(time.Time) bool
	resumed time.Time
	now     time.Time
}

// misfireRuns says, for each nominal time of the plan, whether it runs as far as the misfire
// policy goes. A time reached at most the grace late (or not yet reached) runs. A later one
// has been missed:
//
//   - skip: no missed time runs;
//   - run once (the default): the newest past-due time runs, late or not, so that a job that
//     fell behind runs once rather than not at all;
//   - catch up: the newest MaxCatchUp missed times that lie inside Window run.
//
// The plan records at most MaxFiresPerPlan times, oldest first, so a job far behind takes
// several plans; "newest" is decided over all the times reached, not only this plan's, by
// looking at the schedule beyond the plan (at most MaxCatchUp steps).
func misfireRuns(in misfireInput) []bool {
	grace := in.policy.Grace
	if grace <= 0 {
		grace = in.grace
	}
	lateBefore := in.now.Add(-grace) // a time before this is late
	runs := make([]bool, len(in.nominal))
	for i, t := range in.nominal {
		runs[i] = !t.Before(lateBefore)
	}
	// beyond is the first time after the plan that is not paused.
	beyond := in.next
	if !beyond.IsZero() && beyond.Before(in.resumed) {
		beyond = in.sched.Next(in.resumed.Add(-time.Nanosecond))
	}
	switch in.policy.Action {
	case store.MisfireSkip:
	case store.MisfireCatchUp:
		n := in.policy.MaxCatchUp
		if n <= 0 {
			n = DefaultMaxCatchUp
		}
		window := in.policy.Window
		if window <= 0 {
			window = DefaultCatchUpWindow
		}
		// rank counts the missed times newer than the one looked at.
		rank := 0
		for t := beyond; !t.IsZero() && t.Before(lateBefore) && rank < n; t = in.sched.Next(t) {
			rank++
		}
		for i := len(in.nominal) - 1; i >= 0 && rank < n; i-- {
			t := in.nominal[i]
			if in.paused(t) || !t.Before(lateBefore) {
				continue
			}
			if in.now.Sub(t) > window {
				break // older ones are further out
			}
			runs[i] = true
			rank++
		}
	default: // store.MisfireRunOnce
		if !beyond.IsZero() && !beyond.After(in.now) {
			break // a newer past-due time comes in a later plan
		}
		for i := len(in.nominal) - 1; i >= 0; i-- {
			if t := in.nominal[i]; !in.paused(t) && !t.After(in.now) {
				runs[i] = true
				break
			}
		}
	}
	return runs
}
