package schedule_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/schedule"
)

var anchor = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  schedule.Spec
		after time.Time
		want  []time.Time
	}{
		{
			name:  "six fields with seconds",
			spec:  schedule.Spec{Cron: "*/2 * * * * *"},
			after: anchor,
			want:  []time.Time{anchor.Add(2 * time.Second), anchor.Add(4 * time.Second)},
		},
		{
			name:  "five fields",
			spec:  schedule.Spec{Cron: "30 * * * *"},
			after: anchor,
			want:  []time.Time{anchor.Add(30 * time.Minute), anchor.Add(90 * time.Minute)},
		},
		{
			name:  "descriptor",
			spec:  schedule.Spec{Cron: "@every 90s"},
			after: anchor,
			want:  []time.Time{anchor.Add(90 * time.Second), anchor.Add(180 * time.Second)},
		},
		{
			name:  "time zone",
			spec:  schedule.Spec{Cron: "0 9 * * *", Timezone: "America/New_York"},
			after: anchor,
			// 09:00 EST is 14:00 UTC.
			want: []time.Time{
				time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC),
				time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC),
			},
		},
		{
			name:  "interval",
			spec:  schedule.Spec{Interval: 5 * time.Second},
			after: anchor.Add(7 * time.Second),
			want:  []time.Time{anchor.Add(12 * time.Second), anchor.Add(17 * time.Second)},
		},
		{
			name:  "one-off",
			spec:  schedule.Spec{At: anchor.Add(time.Hour)},
			after: anchor,
			want:  []time.Time{anchor.Add(time.Hour), {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := schedule.Parse(tt.spec, anchor)
			require.NoError(t, err)
			got := make([]time.Time, 0, len(tt.want))
			at := tt.after
			for range tt.want {
				at = s.Next(at)
				got = append(got, at)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		spec      schedule.Spec
		wantField string
		wantIn    string
	}{
		{"malformed cron", schedule.Spec{Cron: "not a cron"}, "cron", "invalid expression"},
		{"too many fields", schedule.Spec{Cron: "* * * * * * *"}, "cron", "invalid expression"},
		{"out of range", schedule.Spec{Cron: "61 * * * *"}, "cron", "invalid expression"},
		{"never fires", schedule.Spec{Cron: "0 0 30 2 *"}, "cron", "never fires"},
		{"TZ prefix", schedule.Spec{Cron: "TZ=UTC * * * * *"}, "cron", "timezone field"},
		{"CRON_TZ prefix", schedule.Spec{Cron: "CRON_TZ=Europe/London 0 * * * *"}, "cron", "timezone field"},
		{"unknown zone", schedule.Spec{Cron: "* * * * *", Timezone: "Mars/Olympus"}, "timezone", "unknown time zone"},
		{"local zone", schedule.Spec{Cron: "* * * * *", Timezone: "Local"}, "timezone", "IANA"},
		{"zero-ish interval", schedule.Spec{Interval: time.Millisecond}, "interval", "at least 1s"},
		{"negative interval", schedule.Spec{Interval: -time.Minute}, "interval", "at least 1s"},
		{"two triggers", schedule.Spec{Cron: "* * * * *", Interval: time.Minute}, "cron", "only one"},
		{"every zero", schedule.Spec{Cron: "@every 0s"}, "cron", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := schedule.Parse(tt.spec, anchor)
			require.Error(t, err)
			var serr *schedule.Error
			require.True(t, errors.As(err, &serr), "error %v is not a *schedule.Error", err)
			require.Equal(t, tt.wantField, serr.Field)
			require.Contains(t, serr.Reason, tt.wantIn)
		})
	}
}

func TestParseNoTrigger(t *testing.T) {
	t.Parallel()
	_, err := schedule.Parse(schedule.Spec{Timezone: "UTC"}, anchor)
	require.ErrorIs(t, err, schedule.ErrNoTrigger)
}

// FuzzParse checks that no expression or zone makes Parse panic, and that an accepted
// schedule yields strictly increasing times.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"* * * * *", "*/2 * * * * *", "@every 1s", "0 0 30 2 *", "@every -1s", "* * * * * * *", "0-", "*/0 * * * *", "TZ=UTC 0 * * * *", "@yearly"} {
		f.Add(seed, "UTC")
	}
	f.Add("0 9 * * *", "Australia/Lord_Howe")
	f.Fuzz(func(t *testing.T, expr, zone string) {
		s, err := schedule.Parse(schedule.Spec{Cron: expr, Timezone: zone}, anchor)
		if err != nil {
			return
		}
		at := anchor
		for range 5 {
			next := s.Next(at)
			if next.IsZero() {
				return
			}
			if !next.After(at) {
				t.Fatalf("Next(%v) = %v, not after", at, next)
			}
			at = next
		}
	})
}
