package store

import "time"

// StartDeadline is when an execution created at now times out if no agent takes it: its
// ScheduleToStartTimeout after it is due (NotBefore) or after now, whichever is later (a
// fire caught up late is due at once); or never (zero).
func StartDeadline(e Execution, now time.Time) time.Time {
	if e.ScheduleToStartTimeout <= 0 {
		return time.Time{}
	}
	due := e.NotBefore
	if due.Before(now) {
		due = now
	}
	return due.Add(e.ScheduleToStartTimeout)
}
