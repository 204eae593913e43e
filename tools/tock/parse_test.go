package main

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// requireUsageError checks that err is a usage error whose message contains each of parts.
func requireUsageError(t *testing.T, err error, parts ...string) {
	t.Helper()
	var uerr *usageError
	require.ErrorAs(t, err, &uerr)
	for _, p := range parts {
		require.Contains(t, err.Error(), p)
	}
}

func TestParsePayload(t *testing.T) {
	t.Parallel()

	object, err := structpb.NewValue(map[string]any{"a": 1.0, "b": []any{"x", true, nil}})
	require.NoError(t, err)
	valid := map[string]*structpb.Value{
		`{"a": 1, "b": ["x", true, null]}`: object,
		`"hello"`:                          structpb.NewStringValue("hello"),
		`42.5`:                             structpb.NewNumberValue(42.5),
		`null`:                             structpb.NewNullValue(),
		` true `:                           structpb.NewBoolValue(true),
		`[]`:                               structpb.NewListValue(&structpb.ListValue{}),
	}
	for in, want := range valid {
		t.Run("valid "+in, func(t *testing.T) {
			t.Parallel()
			got, err := parsePayload("--payload", []byte(in))
			require.NoError(t, err)
			require.True(t, proto.Equal(want, got), "got %v", got)
		})
	}

	invalid := map[string]string{
		"":          "empty",
		"   ":       "empty",
		"{bad":      "not valid JSON",
		"{'a': 1}":  "not valid JSON",
		"1 2":       "not valid JSON",
		"hello":     "not valid JSON",
		`{"a": 1,}`: "not valid JSON",
	}
	for in, msg := range invalid {
		t.Run("invalid "+strconv.Quote(in), func(t *testing.T) {
			t.Parallel()
			_, err := parsePayload("--payload", []byte(in))
			requireUsageError(t, err, "invalid --payload", msg)
		})
	}
}

func TestPayloadSource(t *testing.T) {
	t.Parallel()

	t.Run("inline and file together", func(t *testing.T) {
		t.Parallel()
		_, err := payloadSource{inline: "{}", file: "p.json"}.value(nil, true)
		requireUsageError(t, err, "--payload or --payload-file")
	})
	t.Run("file names the file in errors", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "payload.json", "{nope")
		_, err := payloadSource{file: path}.value(nil, false)
		requireUsageError(t, err, "invalid --payload-file", "payload.json", "not valid JSON")
	})
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		_, err := payloadSource{file: "does-not-exist.json"}.value(nil, false)
		require.ErrorContains(t, err, "read --payload-file")
		var uerr *usageError
		require.False(t, errors.As(err, &uerr), "a missing file is not a usage error")
	})
	t.Run("nothing given", func(t *testing.T) {
		t.Parallel()
		v, err := payloadSource{}.value(nil, false)
		require.NoError(t, err)
		require.Nil(t, v)
	})
	t.Run("explicitly empty inline payload", func(t *testing.T) {
		t.Parallel()
		_, err := payloadSource{}.value(nil, true)
		requireUsageError(t, err, "invalid --payload", "empty")
	})
}

func TestParseSelector(t *testing.T) {
	t.Parallel()

	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		got, err := parseSelector([]string{"env=prod, zone=eu-1", "tier=", "env=prod"})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"env": "prod", "zone": "eu-1", "tier": ""}, got)
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		got, err := parseSelector(nil)
		require.NoError(t, err)
		require.Nil(t, got)
	})

	invalid := map[string][]string{
		`invalid --selector "env"`:            {"env"},
		`invalid --selector "=prod"`:          {"=prod"},
		`invalid --selector "zone"`:           {"env=prod,zone"},
		`label "env" given twice`:             {"env=prod", "env=dev"},
		`invalid --selector "="`:              {" = "},
		`invalid --selector "no-equals-sign"`: {"a=b,no-equals-sign,c=d"},
	}
	for msg, in := range invalid {
		t.Run(msg, func(t *testing.T) {
			t.Parallel()
			_, err := parseSelector(in)
			requireUsageError(t, err, msg)
		})
	}
}

func TestSchedule(t *testing.T) {
	t.Parallel()

	at := time.Date(2026, 7, 1, 9, 30, 0, 0, time.FixedZone("", 2*3600))
	valid := []struct {
		name  string
		flags scheduleFlags
		want  *tockv1.Schedule
	}{
		{"none", scheduleFlags{}, nil},
		{"cron", scheduleFlags{cron: "0 3 * * *", timezone: "Europe/London"}, &tockv1.Schedule{
			Trigger: &tockv1.Schedule_Cron{Cron: "0 3 * * *"}, Timezone: "Europe/London",
		}},
		{"every", scheduleFlags{every: "1m30s"}, &tockv1.Schedule{
			Trigger: &tockv1.Schedule_Interval{Interval: durationpb.New(90 * time.Second)},
		}},
		{"at", scheduleFlags{at: "2026-07-01T09:30:00+02:00"}, &tockv1.Schedule{
			Trigger: &tockv1.Schedule_At{At: timestamppb.New(at)},
		}},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.flags.schedule()
			require.NoError(t, err)
			require.True(t, proto.Equal(tc.want, got), "got %v", got)
		})
	}

	invalid := []struct {
		flags scheduleFlags
		msg   string
	}{
		{scheduleFlags{cron: "@hourly", every: "1h"}, "one of --cron, --every or --at"},
		{scheduleFlags{every: "1h", at: "2026-07-01T09:30:00Z"}, "one of --cron, --every or --at"},
		{scheduleFlags{every: "often"}, `invalid --every "often"`},
		{scheduleFlags{every: "-5s"}, "must be positive"},
		{scheduleFlags{every: "0s"}, "must be positive"},
		{scheduleFlags{at: "tomorrow"}, `invalid --at "tomorrow"`},
		{scheduleFlags{at: "2026-07-01 09:30"}, "RFC 3339"},
		{scheduleFlags{every: "1h", timezone: "UTC"}, "--timezone applies to --cron"},
	}
	for _, tc := range invalid {
		t.Run(tc.msg, func(t *testing.T) {
			t.Parallel()
			_, err := tc.flags.schedule()
			requireUsageError(t, err, tc.msg)
		})
	}
}

func TestParsePositiveDuration(t *testing.T) {
	t.Parallel()

	d, err := parsePositiveDuration("--timeout", "1h30m")
	require.NoError(t, err)
	require.Equal(t, 90*time.Minute, d)

	_, err = parsePositiveDuration("--timeout", "30")
	requireUsageError(t, err, `invalid --timeout "30"`, "such as 90s")
}

func TestParseExecutionState(t *testing.T) {
	t.Parallel()

	valid := map[string]tockv1.ExecutionState{
		"succeeded":                 tockv1.ExecutionState_EXECUTION_STATE_SUCCEEDED,
		"FAILED":                    tockv1.ExecutionState_EXECUTION_STATE_FAILED,
		"timed-out":                 tockv1.ExecutionState_EXECUTION_STATE_TIMED_OUT,
		"timed_out":                 tockv1.ExecutionState_EXECUTION_STATE_TIMED_OUT,
		"canceled":                  tockv1.ExecutionState_EXECUTION_STATE_CANCELLED,
		"EXECUTION_STATE_LOST":      tockv1.ExecutionState_EXECUTION_STATE_LOST,
		" pending ":                 tockv1.ExecutionState_EXECUTION_STATE_PENDING,
		"Running":                   tockv1.ExecutionState_EXECUTION_STATE_RUNNING,
		"execution_state_assigned":  tockv1.ExecutionState_EXECUTION_STATE_ASSIGNED,
		"EXECUTION_STATE_CANCELLED": tockv1.ExecutionState_EXECUTION_STATE_CANCELLED,
	}
	for in, want := range valid {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			got, err := parseExecutionState(in)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
	for _, in := range []string{"", "done", "unspecified", "EXECUTION_STATE_UNSPECIFIED", "3"} {
		t.Run("invalid "+strconv.Quote(in), func(t *testing.T) {
			t.Parallel()
			_, err := parseExecutionState(in)
			requireUsageError(t, err, "invalid --state", "succeeded, failed, timed_out")
		})
	}
}

func TestCollectPages(t *testing.T) {
	t.Parallel()

	// pages serves items 0..n-1 in pages of at most size, the token being the next offset.
	pages := func(n, maxSize int, sizes *[]int32) pageFunc[int] {
		return func(_ context.Context, size int32, token string) ([]int, string, error) {
			*sizes = append(*sizes, size)
			start := 0
			if token != "" {
				start, _ = strconv.Atoi(token)
			}
			end := min(start+int(size), start+maxSize, n)
			var items []int
			for i := start; i < end; i++ {
				items = append(items, i)
			}
			next := ""
			if end < n {
				next = strconv.Itoa(end)
			}
			return items, next, nil
		}
	}

	tests := []struct {
		name      string
		n, max    int
		limit     int
		wantLen   int
		wantNext  string
		wantSizes []int32
	}{
		{"all in one page", 5, 1000, 0, 5, "", []int32{1000}},
		{"all over pages", 25, 10, 0, 25, "", []int32{1000, 1000, 1000}},
		{"limit under one page", 25, 10, 4, 4, "4", []int32{4}},
		{"limit over pages", 25, 10, 23, 23, "23", []int32{23, 13, 3}},
		{"limit reached at the end", 20, 10, 20, 20, "", []int32{20, 10}},
		{"limit above total", 5, 10, 100, 5, "", []int32{100}},
		{"limit above page maximum", 3000, 1000, 2500, 2500, "2500", []int32{1000, 1000, 500}},
		{"empty", 0, 10, 0, 0, "", []int32{1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sizes []int32
			items, next, err := collectPages(t.Context(), tc.limit, pages(tc.n, tc.max, &sizes))
			require.NoError(t, err)
			require.Len(t, items, tc.wantLen)
			for i, v := range items {
				require.Equal(t, i, v)
			}
			require.Equal(t, tc.wantNext, next)
			require.Equal(t, tc.wantSizes, sizes)
		})
	}

	t.Run("error", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("boom")
		_, _, err := collectPages(t.Context(), 0, func(context.Context, int32, string) ([]int, string, error) {
			return nil, "", boom
		})
		require.ErrorIs(t, err, boom)
	})
	t.Run("repeated token", func(t *testing.T) {
		t.Parallel()
		_, _, err := collectPages(t.Context(), 0, func(context.Context, int32, string) ([]int, string, error) {
			return []int{1}, "same", nil
		})
		require.ErrorContains(t, err, `page token "same" twice`)
	})
	t.Run("server sends more than asked", func(t *testing.T) {
		t.Parallel()
		items, _, err := collectPages(t.Context(), 2, func(context.Context, int32, string) ([]int, string, error) {
			return []int{0, 1, 2, 3}, "", nil
		})
		require.NoError(t, err)
		require.Equal(t, []int{0, 1}, items)
	})
}

func TestCheckLimit(t *testing.T) {
	t.Parallel()
	require.NoError(t, checkLimit(0))
	require.NoError(t, checkLimit(7))
	requireUsageError(t, checkLimit(-1), "invalid --limit -1")
}

// FuzzParsePayload checks that any input either parses into a value or yields a usage error
// naming the flag, and never panics.
func FuzzParsePayload(f *testing.F) {
	for _, seed := range []string{`{"a": [1, "x", null]}`, `"s"`, `1e400`, `{"a":1,"a":2}`, "\xff", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		v, err := parsePayload("--payload", []byte(in))
		if err != nil {
			requireUsageError(t, err, "--payload")
			return
		}
		require.NotNil(t, v)
	})
}

// FuzzParseSelector checks that any --selector value parses or yields a usage error.
func FuzzParseSelector(f *testing.F) {
	for _, seed := range []string{"a=1,b=2", "=", ",,,", "a=1,a=2", "k==v"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sel, err := parseSelector([]string{in})
		if err != nil {
			requireUsageError(t, err, "--selector")
			return
		}
		for k := range sel {
			require.NotEmpty(t, k)
		}
	})
}
