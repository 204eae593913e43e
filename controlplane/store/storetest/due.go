package storetest

import (
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// asDue adapts a plan of a job alone to FireDueParams.Plan, for tests that do not look at
// the job's live executions.
func asDue(plan func(store.Job, time.Time) store.FirePlan) func(store.DueJob, time.Time) store.FirePlan {
	return func(due store.DueJob, now time.Time) store.FirePlan { return plan(due.Job, now) }
}
