package schedule

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/require"
)

// The daylight saving changes of 2026 the tests walk through, as instants.
var changes2026 = map[string][]time.Time{
	// 02:00 EST → 03:00 EDT; 02:00 EDT → 01:00 EST.
	"America/New_York": {utc("2026-03-08T07:00:00Z"), utc("2026-11-01T06:00:00Z")},
	// 01:00 GMT → 02:00 BST; 02:00 BST → 01:00 GMT.
	"Europe/London": {utc("2026-03-29T01:00:00Z"), utc("2026-10-25T01:00:00Z")},
	// A 30-minute change: 02:00 +11 → 01:30 +1030; 02:00 +1030 → 02:30 +11.
	"Australia/Lord_Howe": {utc("2026-04-04T15:00:00Z"), utc("2026-10-03T15:30:00Z")},
	// A two-hour change: 01:00 +00 → 03:00 +02; 03:00 +02 → 01:00 +00.
	"Antarctica/Troll": {utc("2026-03-29T01:00:00Z"), utc("2026-10-25T01:00:00Z")},
	// No change at all.
	"Asia/Kolkata": {utc("2026-03-08T07:00:00Z")},
	"UTC":          {utc("2026-03-08T07:00:00Z")},
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// TestRobfigCronAtDaylightSavingChanges records what robfig/cron does on its own at the
// changes, which is why wallSchedule exists: it skips a local time that does not exist and
// fires twice for one that happens twice.
func TestRobfigCronAtDaylightSavingChanges(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	daily, err := parser.Parse("30 2 * * *")
	require.NoError(t, err)
	got := daily.Next(time.Date(2026, 3, 7, 12, 0, 0, 0, ny))
	require.Equal(t, utc("2026-03-09T06:30:00Z"), got.UTC(), "robfig/cron skips 02:30 on the day it does not exist")

	repeat, err := parser.Parse("30 1 * * *")
	require.NoError(t, err)
	first := repeat.Next(time.Date(2026, 10, 31, 12, 0, 0, 0, ny))
	second := repeat.Next(first)
	require.Equal(t, utc("2026-11-01T05:30:00Z"), first.UTC(), "01:30 EDT")
	require.Equal(t, utc("2026-11-01T06:30:00Z"), second.UTC(), "robfig/cron fires 01:30 EST as well")
}

// TestWallScheduleMatchesOracle compares Next, around every change of 2026 in zones with
// changes of one hour, half an hour and two hours, with a brute-force reading of the
// documented rules minute by minute.
func TestWallScheduleMatchesOracle(t *testing.T) {
	t.Parallel()
	exprs := []string{"30 2 * * *", "0 * * * *", "*/15 * * * *", "30 1 * * *", "45 1 * * *", "0,30 0-3 * * *", "15 2 * * *", "*/7 1-3 * * *"}
	for zone, changes := range changes2026 {
		loc, err := time.LoadLocation(zone)
		require.NoError(t, err)
		for _, expr := range exprs {
			for _, spring := range []SpringForward{SpringForwardFirstValid, SpringForwardSkip} {
				for _, fall := range []FallBack{FallBackOnce, FallBackBoth} {
					for _, change := range changes {
						name := fmt.Sprintf("%s/%s/%s/%s/%s", zone, expr, spring, fall, change.Format(time.DateOnly))
						t.Run(name, func(t *testing.T) {
							t.Parallel()
							checkAgainstOracle(t, expr, loc, spring, fall, change.Add(-5*time.Hour), 30*time.Hour)
						})
					}
				}
			}
		}
	}
}

// checkAgainstOracle compares the fires of a minute-level expression in (from, from+span).
func checkAgainstOracle(t *testing.T, expr string, loc *time.Location, spring SpringForward, fall FallBack, from time.Time, span time.Duration) {
	t.Helper()
	parsed, err := parser.Parse(expr)
	require.NoError(t, err)
	spec, ok := parsed.(*cron.SpecSchedule)
	require.True(t, ok)
	want := oracle(spec, loc, spring, fall, from, from.Add(span))
	s := newWallSchedule(spec, loc, spring, fall)
	var got []time.Time
	for at := s.Next(from); !at.IsZero() && at.Before(from.Add(span)); at = s.Next(at) {
		got = append(got, at)
	}
	require.Equal(t, format(want, loc), format(got, loc))
}

// oracle lists the fires in (from, until) by looking at every minute: a minute whose wall
// time matches fires unless it is the second occurrence of that wall time (under
// FallBackOnce); at a change that skips wall times, the change's instant fires when one of
// the skipped wall times matches (under SpringForwardFirstValid).
func oracle(spec *cron.SpecSchedule, loc *time.Location, spring SpringForward, fall FallBack, from, until time.Time) []time.Time {
	naive := *spec
	naive.Location = time.UTC
	matches := func(w time.Time) bool { return naive.Next(w.Add(-time.Second)).Equal(w) }
	wallOf := func(t time.Time) time.Time {
		l := t.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
	}
	var out []time.Time
	for i := from.Truncate(time.Minute).Add(time.Minute); i.Before(until); i = i.Add(time.Minute) {
		w := wallOf(i)
		repeated := false
		for _, d := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
			if wallOf(i.Add(-d)).Equal(w) {
				repeated = true
			}
		}
		fires := matches(w) && (!repeated || fall == FallBackBoth)
		_, off := i.In(loc).Zone()
		_, prev := i.Add(-time.Minute).In(loc).Zone()
		if off > prev && spring == SpringForwardFirstValid {
			// i is the instant of a change that skipped wall times [i+prev, i+off).
			for g := wall(i, prev); g.Before(wall(i, off)); g = g.Add(time.Minute) {
				fires = fires || matches(g)
			}
		}
		if fires && i.After(from) {
			out = append(out, i)
		}
	}
	return out
}

func format(ts []time.Time, loc *time.Location) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.In(loc).Format(time.RFC3339)
	}
	return out
}

// FuzzWallNext checks, for any minute-level expression, zone rule and start, that the fires
// are strictly increasing and agree with the oracle.
func FuzzWallNext(f *testing.F) {
	zones := []string{"America/New_York", "Europe/London", "Australia/Lord_Howe", "Antarctica/Troll", "UTC"}
	f.Add("30 2 * * *", uint8(0), int64(1772935200), false, false)
	f.Add("*/15 * * * *", uint8(2), int64(1775296800), true, true)
	f.Add("45 1 * * *", uint8(1), int64(1792886400), false, true)
	f.Fuzz(func(t *testing.T, expr string, zone uint8, start int64, skip, both bool) {
		parsed, err := parser.Parse(expr)
		if err != nil {
			return
		}
		spec, ok := parsed.(*cron.SpecSchedule)
		if !ok || spec.Second != 1 {
			return // the oracle walks minutes
		}
		loc, err := time.LoadLocation(zones[int(zone)%len(zones)])
		require.NoError(t, err)
		spring, fall := SpringForwardFirstValid, FallBackOnce
		if skip {
			spring = SpringForwardSkip
		}
		if both {
			fall = FallBackBoth
		}
		// Starts within 2025–2028, on a second.
		from := time.Unix(1735689600+(start%(4*365*86400)+4*365*86400)%(4*365*86400), 0).UTC()
		checkAgainstOracle(t, expr, loc, spring, fall, from, 30*time.Hour)
	})
}

func TestParseRules(t *testing.T) {
	t.Parallel()
	_, err := Parse(Spec{Cron: "0 * * * *", SpringForward: "later"}, utc("2026-01-01T00:00:00Z"))
	require.ErrorContains(t, err, "spring_forward: unknown rule")
	_, err = Parse(Spec{Cron: "0 * * * *", FallBack: "twice"}, utc("2026-01-01T00:00:00Z"))
	require.ErrorContains(t, err, "fall_back: unknown rule")

	// @every is real time: a change of the clocks does not move it.
	every, err := Parse(Spec{Cron: "@every 1h", Timezone: "America/New_York"}, utc("2026-01-01T00:00:00Z"))
	require.NoError(t, err)
	require.Equal(t, []time.Time{utc("2026-03-08T07:00:00Z"), utc("2026-03-08T08:00:00Z")},
		Preview(every, utc("2026-03-08T06:00:00Z"), 2))
	require.True(t, slices.IsSortedFunc(Preview(every, utc("2026-11-01T04:00:00Z"), 5), time.Time.Compare))
}
