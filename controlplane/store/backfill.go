package store

import "time"

// BackfillParams says which job Backfill fires and how.
type BackfillParams struct {
	// Job is the job's name.
	Job string
	// Plan decides the fires given the job, its live executions and the database clock. Its
	// NextFireAt is ignored: a backfill does not move the job's schedule.
	Plan func(due DueJob, now time.Time) FirePlan
}
