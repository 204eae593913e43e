// Package schedule turns a job's schedule (a cron expression with a time zone, a fixed
// interval, or a one-off time) into the sequence of its nominal fire times.
//
// Parsing never panics: robfig/cron panics on some malformed expressions, and Parse turns
// those panics into errors. An expression that can never fire (such as "0 0 30 2 *",
// February 30th) is rejected.
//
// The package reads no clock: every function takes the times it works from.
package schedule
