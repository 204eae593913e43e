package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MinInterval is the shortest fixed interval a schedule may have.
const MinInterval = time.Second

// Schedule yields nominal fire times.
type Schedule interface {
	// Next returns the first fire time strictly after t, or the zero time when the schedule
	// fires no more.
	Next(t time.Time) time.Time
}

// Spec is a schedule as a user writes it. Exactly one of Cron, Interval and At is set.
type Spec struct {
	// Cron is a robfig/cron expression: five fields, six with a leading seconds field, or a
	// descriptor such as "@hourly" or "@every 90s".
	Cron string
	// Interval fires every Interval: each fire time is the previous one plus Interval, so
	// the chain of fire times keeps its phase from the first one.
	Interval time.Duration
	// At fires once.
	At time.Time
	// Timezone is the IANA zone Cron is read in; empty means UTC.
	Timezone string
	// SpringForward is what Cron does with local times a daylight saving change skips;
	// empty means SpringForwardFirstValid.
	SpringForward SpringForward
	// FallBack is what Cron does with local times a daylight saving change repeats; empty
	// means FallBackOnce.
	FallBack FallBack
}

// Error is a schedule that cannot be used, naming the field at fault.
type Error struct {
	// Field is the field at fault: "cron", "interval", "at", "timezone", "spring_forward" or
	// "fall_back".
	Field string
	// Reason says what is wrong, for a person.
	Reason string
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

// ErrNoTrigger means a Spec has none of Cron, Interval and At.
var ErrNoTrigger = errors.New("schedule has no trigger: set one of cron, interval or at")

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom |
	cron.Month | cron.Dow | cron.Descriptor)

// Parse validates spec and returns its schedule. A cron expression must fire at least once
// within five years after anchor to be accepted.
func Parse(spec Spec, anchor time.Time) (Schedule, error) {
	set := 0
	if spec.Cron != "" {
		set++
	}
	if spec.Interval != 0 {
		set++
	}
	if !spec.At.IsZero() {
		set++
	}
	switch {
	case set == 0:
		return nil, ErrNoTrigger
	case set > 1:
		return nil, &Error{Field: "cron", Reason: "set only one of cron, interval and at"}
	}
	loc, err := LoadLocation(spec.Timezone)
	if err != nil {
		return nil, err
	}
	if err := spec.SpringForward.check(); err != nil {
		return nil, err
	}
	if err := spec.FallBack.check(); err != nil {
		return nil, err
	}
	switch {
	case spec.Cron != "":
		return parseCron(spec, loc, anchor)
	case spec.Interval != 0:
		if spec.Interval < MinInterval {
			return nil, &Error{Field: "interval", Reason: fmt.Sprintf("must be at least %s, got %s", MinInterval, spec.Interval)}
		}
		return interval{every: spec.Interval}, nil
	default:
		return once{at: spec.At.UTC()}, nil
	}
}

// LoadLocation resolves an IANA zone name; empty means UTC.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, &Error{Field: "timezone", Reason: `"Local" depends on the server; name an IANA zone such as "Europe/London"`}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &Error{Field: "timezone", Reason: fmt.Sprintf("unknown time zone %q; use an IANA name such as \"America/New_York\"", name)}
	}
	return loc, nil
}

func parseCron(spec Spec, loc *time.Location, anchor time.Time) (s Schedule, err error) {
	expr := spec.Cron
	trimmed := strings.TrimSpace(expr)
	if strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ=") {
		return nil, &Error{Field: "cron", Reason: "time zone prefixes are not accepted in the expression; set the timezone field instead"}
	}
	if rest, ok := strings.CutPrefix(trimmed, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, &Error{Field: "cron", Reason: fmt.Sprintf("invalid duration in %q: %v", expr, err)}
		}
		if d < MinInterval {
			return nil, &Error{Field: "cron", Reason: fmt.Sprintf("@every must be at least %s, got %s", MinInterval, d)}
		}
	}
	defer func() {
		// robfig/cron panics on some malformed expressions; no input may crash the caller.
		if r := recover(); r != nil {
			s, err = nil, &Error{Field: "cron", Reason: fmt.Sprintf("invalid expression %q: %v", expr, r)}
		}
	}()
	parsed, perr := parser.Parse(trimmed)
	if perr != nil {
		return nil, &Error{Field: "cron", Reason: fmt.Sprintf("invalid expression %q: %v", expr, perr)}
	}
	var c Schedule = cronSchedule{inner: parsed, loc: loc}
	if wallSpec, ok := parsed.(*cron.SpecSchedule); ok {
		// Descriptors other than @every and every field expression: wall-clock times, with
		// the daylight saving rules applied (dst.go). @every is a fixed period of real time.
		c = newWallSchedule(wallSpec, loc, spec.SpringForward, spec.FallBack)
	}
	if c.Next(anchor).IsZero() {
		return nil, &Error{Field: "cron", Reason: fmt.Sprintf("expression %q never fires", expr)}
	}
	return c, nil
}

// cronSchedule reads a robfig/cron schedule that is not a wall-clock specification (@every)
// and returns UTC times.
type cronSchedule struct {
	inner cron.Schedule
	loc   *time.Location
}

func (c cronSchedule) Next(t time.Time) time.Time {
	next := c.inner.Next(t.In(c.loc))
	if next.IsZero() {
		return time.Time{}
	}
	return next.UTC()
}

// interval fires every period after the time it is asked about.
type interval struct {
	every time.Duration
}

func (i interval) Next(t time.Time) time.Time { return t.Add(i.every).UTC() }

// once fires at one time.
type once struct{ at time.Time }

func (o once) Next(t time.Time) time.Time {
	if t.Before(o.at) {
		return o.at
	}
	return time.Time{}
}
