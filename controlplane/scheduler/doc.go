// Package scheduler turns job schedules into fires.
//
// Each job row holds its next fire time. A Scheduler repeatedly asks the store to claim the
// jobs due within a short horizon; for each one, inside the store's transaction, Plan decides
// which nominal times were reached and what comes of each (dispatched, missed under the job's
// misfire policy, skipped because of its overlap policy given the live executions the store
// counted, or skipped because the job is or was paused), and when the job fires next.
// PlanBackfill does the same for a past range asked for. The rules are in
// docs/scheduling.md, and as data-driven scenarios in testdata/*.txt. The fire records are unique
// on (job, nominal time), which is what keeps any number of replicas from firing twice; and
// the job's next fire time moves only in the transaction that records the fires it passes,
// so a replica killed mid-way leaves no nominal time unrecorded.
//
// Fires claimed ahead of their nominal time carry it as their execution's not-before time;
// the scheduler asks the dispatcher to wake at that time so that they start on time.
//
// Plan is pure and reads no clock; Scheduler is the loop that drives it.
package scheduler
