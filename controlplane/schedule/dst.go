package schedule

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// SpringForward is what a cron schedule does with a local time that a daylight saving change
// skips (the hour lost when clocks spring forward).
type SpringForward string

// The spring-forward rules; the empty rule is SpringForwardFirstValid.
const (
	// SpringForwardFirstValid fires once at the first valid instant after the skipped
	// times: the instant the clocks jumped. A fire that falls on that instant anyway is the
	// same fire.
	SpringForwardFirstValid SpringForward = "first_valid"
	// SpringForwardSkip does not fire for skipped times.
	SpringForwardSkip SpringForward = "skip"
)

// FallBack is what a cron schedule does with a local time that a daylight saving change
// repeats (the hour lived twice when clocks fall back).
type FallBack string

// The fall-back rules; the empty rule is FallBackOnce.
const (
	// FallBackOnce fires once, at the first of the two instants.
	FallBackOnce FallBack = "once"
	// FallBackBoth fires at both instants.
	FallBackBoth FallBack = "both"
)

func (r SpringForward) check() error {
	switch r {
	case "", SpringForwardFirstValid, SpringForwardSkip:
		return nil
	}
	return &Error{Field: "spring_forward", Reason: fmt.Sprintf("unknown rule %q; use %q or %q", string(r), SpringForwardFirstValid, SpringForwardSkip)}
}

func (r FallBack) check() error {
	switch r {
	case "", FallBackOnce, FallBackBoth:
		return nil
	}
	return &Error{Field: "fall_back", Reason: fmt.Sprintf("unknown rule %q; use %q or %q", string(r), FallBackOnce, FallBackBoth)}
}

// wallSchedule reads a cron specification on the wall clock of a time zone and applies
// explicit rules to the daylight saving changes.
//
// robfig/cron evaluated in a zone with daylight saving does neither of the documented
// defaults: it never fires for a local time that a spring-forward change skips (a daily
// "30 2 * * *" in America/New_York does not run on the day clocks go from 02:00 to 03:00),
// and it fires twice for a local time that a fall-back change repeats (01:30 EDT and 01:30
// EST). So the specification is matched here against naive wall-clock times (robfig/cron in
// UTC, where no change happens), and each matching wall time is mapped to instants one zone
// period at a time:
//
//   - a wall time valid in the period maps to one instant; when the previous period's
//     offset was larger (clocks fell back) and the wall time was lived in that period too,
//     it is the second of the two, fired only under FallBackBoth;
//   - a wall time that falls in the gap at the end of a period (clocks spring forward) is
//     fired at the instant of the change under SpringForwardFirstValid, and not at all under
//     SpringForwardSkip.
type wallSchedule struct {
	spec   *cron.SpecSchedule // Location is UTC: its times are naive wall-clock times
	loc    *time.Location
	spring SpringForward
	fall   FallBack
}

// maxPeriodSteps bounds the zone periods one Next walks through; a cron schedule that
// fires at all fires within five years, and no zone changes its offset more than a few times
// a year.
const maxPeriodSteps = 64

// newWallSchedule returns spec read on loc's wall clock under the rules.
func newWallSchedule(spec *cron.SpecSchedule, loc *time.Location, spring SpringForward, fall FallBack) wallSchedule {
	naive := *spec
	naive.Location = time.UTC
	return wallSchedule{spec: &naive, loc: loc, spring: spring, fall: fall}
}

// wall returns the wall-clock reading of instant t at offset off seconds, as a UTC time.
func wall(t time.Time, off int) time.Time {
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// Next returns the first fire time strictly after t, in UTC, or the zero time when there is
// none within robfig/cron's five-year search.
func (w wallSchedule) Next(t time.Time) time.Time {
	at := t // the period searched is the one holding at
	_, off := t.In(w.loc).Zone()
	from := wall(t, off) // candidates are wall times strictly after from
	for range maxPeriodSteps {
		local := at.In(w.loc)
		_, off := local.Zone()
		start, end := local.ZoneBounds()
		cand := w.spec.Next(from)
		if cand.IsZero() {
			return time.Time{}
		}
		inst := cand.Add(-time.Duration(off) * time.Second)
		if end.IsZero() || inst.Before(end) {
			if w.fall != FallBackBoth && w.repeated(cand, start) {
				// The first of the two instants was in the previous period; skip the rest
				// of the repeated wall times at once.
				_, prevOff := start.Add(-time.Nanosecond).In(w.loc).Zone()
				from = wall(start, prevOff).Add(-time.Nanosecond)
				continue
			}
			return inst
		}
		// No candidate left in this period. The next period starts at end.
		_, nextOff := end.In(w.loc).Zone()
		if nextOff > off && cand.Before(wall(end, nextOff)) && w.spring != SpringForwardSkip {
			// cand lies in the gap the change skips: it fires when the clocks jump.
			return end.UTC()
		}
		at = end
		from = wall(end, nextOff).Add(-time.Nanosecond)
	}
	return time.Time{}
}

// repeated reports whether wall time cand, valid in the period starting at start, was also
// lived in the period before (the clocks fell back at start).
func (w wallSchedule) repeated(cand, start time.Time) bool {
	if start.IsZero() {
		return false
	}
	_, prevOff := start.Add(-time.Nanosecond).In(w.loc).Zone()
	_, off := start.In(w.loc).Zone()
	return prevOff > off && cand.Before(wall(start, prevOff))
}
