package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func at(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

const (
	firstValid = tockv1.SpringForward_SPRING_FORWARD_RUN_AT_FIRST_VALID
	skipGap    = tockv1.SpringForward_SPRING_FORWARD_SKIP
	runOnce    = tockv1.FallBack_FALL_BACK_RUN_ONCE
	runBoth    = tockv1.FallBack_FALL_BACK_RUN_BOTH
)

// TestPreviewDaylightSaving drives the daylight saving rules through the preview API, for
// both changes of 2026 in America/New_York and Europe/London (an hour) and
// Australia/Lord_Howe (half an hour), under each rule. Each case lists the local times
// expected; the UTC instant of each is checked against it.
func TestPreviewDaylightSaving(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		name   string
		zone   string
		cron   string
		spring tockv1.SpringForward
		fall   tockv1.FallBack
		after  string
		want   []string
	}{
		// New York springs forward at 02:00 EST on 8 March to 03:00 EDT.
		{"NewYork/spring/default", "America/New_York", "30 2 * * *", 0, 0, "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"NewYork/spring/first-valid", "America/New_York", "30 2 * * *", firstValid, 0, "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"NewYork/spring/skip", "America/New_York", "30 2 * * *", skipGap, 0, "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"}},
		{"NewYork/spring/hourly-merges", "America/New_York", "0 * * * *", firstValid, 0, "2026-03-08T00:30:00-05:00",
			[]string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"}},
		{"NewYork/spring/hourly-skip", "America/New_York", "0 * * * *", skipGap, 0, "2026-03-08T00:30:00-05:00",
			[]string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"}},
		// New York falls back at 02:00 EDT on 1 November to 01:00 EST.
		{"NewYork/fall/default", "America/New_York", "30 1 * * *", 0, 0, "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"NewYork/fall/once", "America/New_York", "30 1 * * *", 0, runOnce, "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"NewYork/fall/both", "America/New_York", "30 1 * * *", 0, runBoth, "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"}},
		{"NewYork/fall/half-hourly-once", "America/New_York", "*/30 * * * *", 0, runOnce, "2026-11-01T00:45:00-04:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T02:00:00-05:00"}},
		{"NewYork/fall/half-hourly-both", "America/New_York", "*/30 * * * *", 0, runBoth, "2026-11-01T00:45:00-04:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}},
		// London springs forward at 01:00 GMT on 29 March to 02:00 BST.
		{"London/spring/first-valid", "Europe/London", "30 1 * * *", firstValid, 0, "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"}},
		{"London/spring/skip", "Europe/London", "30 1 * * *", skipGap, 0, "2026-03-28T12:00:00Z",
			[]string{"2026-03-30T01:30:00+01:00", "2026-03-31T01:30:00+01:00"}},
		// London falls back at 02:00 BST on 25 October to 01:00 GMT.
		{"London/fall/once", "Europe/London", "30 1 * * *", 0, runOnce, "2026-10-24T12:00:00+01:00",
			[]string{"2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00Z"}},
		{"London/fall/both", "Europe/London", "30 1 * * *", 0, runBoth, "2026-10-24T12:00:00+01:00",
			[]string{"2026-10-25T01:30:00+01:00", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"}},
		// Lord Howe Island springs forward half an hour, at 02:00 on 4 October to 02:30.
		{"LordHowe/spring/first-valid", "Australia/Lord_Howe", "15 2 * * *", firstValid, 0, "2026-10-03T12:00:00+10:30",
			[]string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
		{"LordHowe/spring/skip", "Australia/Lord_Howe", "15 2 * * *", skipGap, 0, "2026-10-03T12:00:00+10:30",
			[]string{"2026-10-05T02:15:00+11:00", "2026-10-06T02:15:00+11:00"}},
		{"LordHowe/spring/quarter-hourly", "Australia/Lord_Howe", "*/15 * * * *", firstValid, 0, "2026-10-04T01:40:00+10:30",
			[]string{"2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"}},
		// Lord Howe falls back half an hour, at 02:00 on 5 April to 01:30.
		{"LordHowe/fall/once", "Australia/Lord_Howe", "45 1 * * *", 0, runOnce, "2026-04-04T12:00:00+11:00",
			[]string{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
		{"LordHowe/fall/both", "Australia/Lord_Howe", "45 1 * * *", 0, runBoth, "2026-04-04T12:00:00+11:00",
			[]string{"2026-04-05T01:45:00+11:00", "2026-04-05T01:45:00+10:30", "2026-04-06T01:45:00+10:30"}},
		{"LordHowe/fall/quarter-hourly-once", "Australia/Lord_Howe", "*/15 * * * *", 0, runOnce, "2026-04-05T01:20:00+11:00",
			[]string{"2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T02:00:00+10:30"}},
		{"LordHowe/fall/quarter-hourly-both", "Australia/Lord_Howe", "*/15 * * * *", 0, runBoth, "2026-04-05T01:20:00+11:00",
			[]string{"2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			after := at(tt.after)
			resp, err := h.schedules.PreviewSchedule(t.Context(), &tockv1.PreviewScheduleRequest{
				Schedule: &tockv1.Schedule{
					Trigger:       &tockv1.Schedule_Cron{Cron: tt.cron},
					Timezone:      tt.zone,
					SpringForward: tt.spring,
					FallBack:      tt.fall,
				},
				Count: int32(len(tt.want)),
				After: after,
			})
			require.NoError(t, err)
			var local []string
			for _, ft := range resp.GetFireTimes() {
				local = append(local, ft.GetLocalTime())
				lt, err := time.Parse(time.RFC3339, ft.GetLocalTime())
				require.NoError(t, err)
				require.True(t, lt.Equal(ft.GetTime().AsTime()), "%s is %s", ft.GetLocalTime(), ft.GetTime().AsTime())
			}
			require.Equal(t, tt.want, local)
		})
	}
}

func TestPreviewJob(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC))
	h.createJob(t, &tockv1.Job{
		Name: "nightly", Handler: "report",
		Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "30 1 * * *"}, Timezone: "America/New_York", FallBack: runBoth},
	})
	resp, err := h.jobs.PreviewJob(t.Context(), &tockv1.PreviewJobRequest{Name: "nightly", Count: 3})
	require.NoError(t, err)
	var got []string
	for _, ft := range resp.GetFireTimes() {
		got = append(got, ft.GetTime().AsTime().Format(time.RFC3339)+" "+ft.GetLocalTime())
	}
	require.Equal(t, []string{
		"2026-11-01T05:30:00Z 2026-11-01T01:30:00-04:00",
		"2026-11-01T06:30:00Z 2026-11-01T01:30:00-05:00",
		"2026-11-02T06:30:00Z 2026-11-02T01:30:00-05:00",
	}, got)

	// An interval keeps its phase from the job's creation, also once the job is behind.
	h.createJob(t, &tockv1.Job{Name: "every", Handler: "h", Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Interval{Interval: durationpb.New(90 * time.Second)}}})
	h.clock.Set(time.Date(2026, 10, 31, 16, 5, 0, 0, time.UTC))
	resp, err = h.jobs.PreviewJob(t.Context(), &tockv1.PreviewJobRequest{Name: "every", Count: 2})
	require.NoError(t, err)
	require.Len(t, resp.GetFireTimes(), 2)
	require.Equal(t, time.Date(2026, 10, 31, 16, 6, 0, 0, time.UTC), resp.GetFireTimes()[0].GetTime().AsTime())
	require.Equal(t, "2026-10-31T16:07:30Z", resp.GetFireTimes()[1].GetLocalTime())

	// Default count, limits and jobs that do not fire on a schedule.
	resp, err = h.jobs.PreviewJob(t.Context(), &tockv1.PreviewJobRequest{Name: "nightly"})
	require.NoError(t, err)
	require.Len(t, resp.GetFireTimes(), 10)
	_, err = h.jobs.PreviewJob(t.Context(), &tockv1.PreviewJobRequest{Name: "nightly", Count: 1001})
	requireInvalid(t, err, "count")
	h.createJob(t, &tockv1.Job{Name: "manual", Handler: "h"})
	_, err = h.jobs.PreviewJob(t.Context(), &tockv1.PreviewJobRequest{Name: "manual"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	_, err = h.jobs.PreviewJob(t.Context(), &tockv1.PreviewJobRequest{Name: "nope"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

func TestPreviewSchedule(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	// Without after: from now (the database clock).
	resp, err := h.schedules.PreviewSchedule(t.Context(), &tockv1.PreviewScheduleRequest{
		Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "@hourly"}}, Count: 2,
	})
	require.NoError(t, err)
	require.Equal(t, "2026-03-01T13:00:00Z", resp.GetFireTimes()[0].GetLocalTime())
	// A one-off time fires once.
	resp, err = h.schedules.PreviewSchedule(t.Context(), &tockv1.PreviewScheduleRequest{
		Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_At{At: at("2026-06-01T00:00:00Z")}, Timezone: "Europe/London"},
	})
	require.NoError(t, err)
	require.Len(t, resp.GetFireTimes(), 1)
	require.Equal(t, "2026-06-01T01:00:00+01:00", resp.GetFireTimes()[0].GetLocalTime())

	bad := []struct {
		name string
		req  *tockv1.PreviewScheduleRequest
		want string
	}{
		{"no schedule", &tockv1.PreviewScheduleRequest{}, "schedule: is required"},
		{"no trigger", &tockv1.PreviewScheduleRequest{Schedule: &tockv1.Schedule{Timezone: "UTC"}}, "schedule: has no trigger"},
		{"never fires", &tockv1.PreviewScheduleRequest{Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "0 0 30 2 *"}}}, "schedule.cron: expression \"0 0 30 2 *\" never fires"},
		{"TZ prefix", &tockv1.PreviewScheduleRequest{Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "TZ=Europe/Paris 0 * * * *"}}}, "schedule.cron"},
		{"unknown zone", &tockv1.PreviewScheduleRequest{Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "0 * * * *"}, Timezone: "Europe/Atlantis"}}, "schedule.timezone"},
		{"bad count", &tockv1.PreviewScheduleRequest{Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "0 * * * *"}}, Count: -1}, "count"},
		{"bad rule", &tockv1.PreviewScheduleRequest{Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "0 * * * *"}, SpringForward: 7}}, "schedule.spring_forward"},
	}
	for _, tt := range bad {
		_, err := h.schedules.PreviewSchedule(t.Context(), tt.req)
		requireInvalid(t, err, tt.want)
	}
}

// TestPreviewREST checks the REST paths of the previews.
func TestPreviewREST(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	srv := h.rest(t)
	h.createJob(t, &tockv1.Job{Name: "tick", Handler: "echo", Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "0 9 * * *"}, Timezone: "America/New_York"}})

	code, body := get(t, srv.URL+"/v1/jobs/tick:preview?count=2")
	require.Equal(t, http.StatusOK, code, body)
	var job struct {
		FireTimes []struct {
			Time      time.Time `json:"time"`
			LocalTime string    `json:"localTime"`
		} `json:"fireTimes"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &job))
	require.Len(t, job.FireTimes, 2)
	require.Equal(t, "2026-03-01T09:00:00-05:00", job.FireTimes[0].LocalTime)
	require.Equal(t, time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC), job.FireTimes[0].Time)

	code, body = do(t, http.MethodPost, srv.URL+"/v1/schedules:preview",
		`{"schedule": {"cron": "30 2 * * *", "timezone": "America/New_York", "springForward": "SPRING_FORWARD_SKIP"}, "count": 1, "after": "2026-03-07T12:00:00Z"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"localTime":"2026-03-09T02:30:00-04:00"`)

	code, body = do(t, http.MethodPost, srv.URL+"/v1/schedules:preview", `{"schedule": {"cron": "0 0 30 2 *"}}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "never fires")
}

// TestOneOffTimeAlreadyPast checks that a one-off job whose time has passed when it is created
// is not dropped: its time is its first fire, which the scheduler takes as a misfire.
func TestOneOffTimeAlreadyPast(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	past := &tockv1.Schedule{Trigger: &tockv1.Schedule_At{At: at("2026-03-01T11:59:58Z")}}
	job := h.createJob(t, &tockv1.Job{Name: "late", Handler: "h", Schedule: past})
	require.Equal(t, "2026-03-01T11:59:58Z", job.GetNextFireTime().AsTime().Format(time.RFC3339))
	future := &tockv1.Schedule{Trigger: &tockv1.Schedule_At{At: at("2026-03-01T13:00:00Z")}}
	job = h.createJob(t, &tockv1.Job{Name: "later", Handler: "h", Schedule: future})
	require.Equal(t, "2026-03-01T13:00:00Z", job.GetNextFireTime().AsTime().Format(time.RFC3339))
}
