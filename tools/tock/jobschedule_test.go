package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func TestJobNext(t *testing.T) {
	t.Parallel()
	answer := &tockv1.PreviewJobResponse{FireTimes: []*tockv1.FireTime{
		{Time: timestamppb.New(time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC)), LocalTime: "2026-11-01T01:30:00-04:00"},
		{Time: timestamppb.New(time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC)), LocalTime: "2026-11-01T01:30:00-05:00"},
	}}
	h := setup(t)
	var got *tockv1.PreviewJobRequest
	h.jobs.PreviewJobFunc = func(req *tockv1.PreviewJobRequest) (*tockv1.PreviewJobResponse, error) {
		got = req
		return answer, nil
	}
	r := h.run(t, "job", "next", "nightly", "-n", "2")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "nightly", got.GetName())
	require.Equal(t, int32(2), got.GetCount())
	require.Equal(t, "UTC                    LOCAL\n"+
		"2026-11-01T05:30:00Z   2026-11-01T01:30:00-04:00\n"+
		"2026-11-01T06:30:00Z   2026-11-01T01:30:00-05:00\n", r.stdout)

	r = h.run(t, "job", "next", "nightly", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, int32(10), got.GetCount(), "ten by default")
	var resp tockv1.PreviewJobResponse
	require.NoError(t, protojson.Unmarshal([]byte(r.stdout), &resp))
	require.Len(t, resp.GetFireTimes(), 2)

	r = h.run(t, "job", "next", "nightly", "-n", "0")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "invalid -n 0")

	h.jobs.PreviewJobFunc = func(*tockv1.PreviewJobRequest) (*tockv1.PreviewJobResponse, error) {
		return nil, status.Error(codes.FailedPrecondition, `job "manual" has no schedule: it runs only when triggered`)
	}
	r = h.run(t, "job", "next", "manual")
	require.NotEqual(t, 0, r.code)
	require.Contains(t, r.stderr, "runs only when triggered")
}

func TestJobBackfill(t *testing.T) {
	t.Parallel()
	h := setup(t)
	var got *tockv1.BackfillJobRequest
	h.jobs.BackfillJobFunc = func(req *tockv1.BackfillJobRequest) (*tockv1.BackfillJobResponse, error) {
		got = req
		return &tockv1.BackfillJobResponse{Fires: []*tockv1.Fire{
			{Job: "hourly", NominalTime: req.GetStart(), Outcome: tockv1.FireOutcome_FIRE_OUTCOME_DISPATCHED, ExecutionId: "e-1", FireTime: timestamppb.New(testNow)},
			{Job: "hourly", NominalTime: timestamppb.New(req.GetStart().AsTime().Add(time.Hour)), Outcome: tockv1.FireOutcome_FIRE_OUTCOME_SKIPPED_OVERLAP, FireTime: timestamppb.New(testNow)},
		}}, nil
	}
	r := h.run(t, "job", "backfill", "hourly", "--start", "2026-02-28T00:00:00Z", "--end", "2026-02-28T02:00:00Z")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "hourly", got.GetName())
	require.Equal(t, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC), got.GetStart().AsTime())
	require.Equal(t, time.Date(2026, 2, 28, 2, 0, 0, 0, time.UTC), got.GetEnd().AsTime())
	require.Contains(t, r.stdout, "2026-02-28T00:00:00Z   DISPATCHED")
	require.Contains(t, r.stdout, "2026-02-28T01:00:00Z   SKIPPED_OVERLAP")

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--end", "2026-02-28T02:00:00Z"}, "--start is required"},
		{[]string{"--start", "yesterday", "--end", "2026-02-28T02:00:00Z"}, `invalid --start "yesterday"`},
		{[]string{"--start", "2026-02-28T02:00:00Z", "--end", "2026-02-28T01:00:00Z"}, "must be after --start"},
	} {
		r := h.run(t, append([]string{"job", "backfill", "hourly"}, tc.args...)...)
		require.Equal(t, exitUsage, r.code, tc.msg)
		require.Contains(t, r.stderr, tc.msg)
	}
}

func TestJobCreatePolicyFlags(t *testing.T) {
	t.Parallel()
	h := setup(t)
	var got *tockv1.Job
	h.jobs.CreateJobFunc = func(req *tockv1.CreateJobRequest) (*tockv1.CreateJobResponse, error) {
		got = req.GetJob()
		return &tockv1.CreateJobResponse{Job: req.GetJob()}, nil
	}
	r := h.run(t, "job", "create", "nightly", "--handler", "report", "--cron", "30 1 * * *", "--timezone", "America/New_York",
		"--misfire", "catch-up", "--max-catch-up", "3", "--catch-up-window", "2h", "--misfire-grace", "10s",
		"--overlap", "allow-n", "--max-concurrent", "2",
		"--schedule-to-start-timeout", "1m", "--schedule-to-close-timeout", "1h",
		"--jitter", "30s", "--spring-forward", "skip", "--fall-back", "both")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP, got.GetMisfirePolicy().GetAction())
	require.Equal(t, int32(3), got.GetMisfirePolicy().GetMaxCatchUp())
	require.Equal(t, 2*time.Hour, got.GetMisfirePolicy().GetWindow().AsDuration())
	require.Equal(t, 10*time.Second, got.GetMisfirePolicy().GetGrace().AsDuration())
	require.Equal(t, tockv1.OverlapAction_OVERLAP_ACTION_ALLOW_N, got.GetOverlapPolicy().GetAction())
	require.Equal(t, int32(2), got.GetOverlapPolicy().GetMaxConcurrent())
	require.Equal(t, time.Minute, got.GetScheduleToStartTimeout().AsDuration())
	require.Equal(t, time.Hour, got.GetScheduleToCloseTimeout().AsDuration())
	require.Equal(t, 30*time.Second, got.GetSchedule().GetJitter().AsDuration())
	require.Equal(t, tockv1.SpringForward_SPRING_FORWARD_SKIP, got.GetSchedule().GetSpringForward())
	require.Equal(t, tockv1.FallBack_FALL_BACK_RUN_BOTH, got.GetSchedule().GetFallBack())
	require.Contains(t, r.stdout, "Misfire:")
	require.Contains(t, r.stdout, "CATCH_UP (at most 3 within 2h0m0s)")
	require.Contains(t, r.stdout, "ALLOW_N (at most 2 at once)")
	require.Contains(t, r.stdout, "spring forward: SKIP, fall back: RUN_BOTH")

	r = h.run(t, "job", "create", "load", "--handler", "load", "--depends-on", "extract,transform", "--depends-on", "audit", "--overlap", "forbid")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, []string{"extract", "transform", "audit"}, got.GetDependsOn())
	require.Equal(t, tockv1.OverlapAction_OVERLAP_ACTION_FORBID, got.GetOverlapPolicy().GetAction())
	require.Nil(t, got.GetMisfirePolicy())
	require.Contains(t, r.stdout, "extract, transform, audit")

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--misfire", "later"}, `invalid --misfire "later"`},
		{[]string{"--max-catch-up", "3"}, "--max-catch-up and --catch-up-window go with --misfire catch-up"},
		{[]string{"--overlap", "allow-n"}, "needs --max-concurrent"},
		{[]string{"--overlap", "forbid", "--max-concurrent", "2"}, "--max-concurrent goes with --overlap allow-n"},
		{[]string{"--schedule-to-close-timeout", "0s"}, "must be positive"},
		{[]string{"--jitter", "5s"}, "apply to a schedule"},
		{[]string{"--every", "1m", "--fall-back", "twice"}, `invalid --fall-back "twice"`},
	} {
		r := h.run(t, append([]string{"job", "create", "x", "--handler", "h"}, tc.args...)...)
		require.Equal(t, exitUsage, r.code, tc.msg)
		require.Contains(t, r.stderr, tc.msg)
	}
	r = h.run(t, "job", "create", "-f", "job.json", "--overlap", "forbid")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "-f cannot be combined with --overlap")
}

func TestPolicyFieldsHideDefaults(t *testing.T) {
	t.Parallel()
	require.Empty(t, policyFields(&tockv1.Job{
		Schedule:      &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "@daily"}, SpringForward: tockv1.SpringForward_SPRING_FORWARD_RUN_AT_FIRST_VALID},
		MisfirePolicy: &tockv1.MisfirePolicy{Action: tockv1.MisfireAction_MISFIRE_ACTION_RUN_ONCE, Grace: durationpb.New(5 * time.Second)},
		OverlapPolicy: &tockv1.OverlapPolicy{Action: tockv1.OverlapAction_OVERLAP_ACTION_ALLOW},
	}))
}
