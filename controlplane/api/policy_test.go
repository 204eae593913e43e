package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func cron(expr string) *tockv1.Schedule {
	return &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: expr}}
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// TestBadSchedulingInput checks that each bad value gets InvalidArgument naming the field
// and the reason.
func TestBadSchedulingInput(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	h.createJob(t, &tockv1.Job{Name: "upstream", Handler: "h"})
	tests := []struct {
		name string
		edit func(j *tockv1.Job)
		want []string
	}{
		{"malformed cron", func(j *tockv1.Job) { j.Schedule = cron("every day") }, []string{"job.schedule.cron", "invalid expression"}},
		{"too many fields", func(j *tockv1.Job) { j.Schedule = cron("* * * * * * *") }, []string{"job.schedule.cron"}},
		{"never-firing cron", func(j *tockv1.Job) { j.Schedule = cron("0 0 30 2 *") }, []string{"job.schedule.cron", "never fires"}},
		{"TZ prefix", func(j *tockv1.Job) { j.Schedule = cron("TZ=Europe/London 0 9 * * *") }, []string{"job.schedule.cron", "set the timezone field instead"}},
		{"CRON_TZ prefix", func(j *tockv1.Job) { j.Schedule = cron("CRON_TZ=UTC 0 9 * * *") }, []string{"job.schedule.cron"}},
		{"unknown zone", func(j *tockv1.Job) { j.Schedule = cron("0 9 * * *"); j.Schedule.Timezone = "America/Gotham" }, []string{"job.schedule.timezone", "unknown time zone"}},
		{"zero interval", func(j *tockv1.Job) {
			j.Schedule = &tockv1.Schedule{Trigger: &tockv1.Schedule_Interval{Interval: dur(0)}}
		}, []string{"job.schedule.interval", "must be positive"}},
		{"negative interval", func(j *tockv1.Job) {
			j.Schedule = &tockv1.Schedule{Trigger: &tockv1.Schedule_Interval{Interval: dur(-time.Minute)}}
		}, []string{"job.schedule.interval"}},
		{"sub-second interval", func(j *tockv1.Job) {
			j.Schedule = &tockv1.Schedule{Trigger: &tockv1.Schedule_Interval{Interval: dur(time.Millisecond)}}
		}, []string{"job.schedule.interval", "at least 1s"}},
		{"@every zero", func(j *tockv1.Job) { j.Schedule = cron("@every 0s") }, []string{"job.schedule.cron"}},
		{"negative jitter", func(j *tockv1.Job) { j.Schedule = cron("@hourly"); j.Schedule.Jitter = dur(-time.Second) }, []string{"job.schedule.jitter"}},
		{"jitter too long", func(j *tockv1.Job) { j.Schedule = cron("@hourly"); j.Schedule.Jitter = dur(2 * time.Hour) }, []string{"job.schedule.jitter", "1h0m0s"}},
		{"unknown spring rule", func(j *tockv1.Job) { j.Schedule = cron("@hourly"); j.Schedule.SpringForward = 9 }, []string{"job.schedule.spring_forward"}},
		{"unknown fall rule", func(j *tockv1.Job) { j.Schedule = cron("@hourly"); j.Schedule.FallBack = 9 }, []string{"job.schedule.fall_back"}},
		{"rules without trigger", func(j *tockv1.Job) { j.Schedule = &tockv1.Schedule{FallBack: runBoth} }, []string{"job.schedule", "no trigger"}},
		{"timeout too short", func(j *tockv1.Job) { j.Timeout = dur(0) }, []string{"job.timeout"}},
		{"timeout too long", func(j *tockv1.Job) { j.Timeout = dur(25 * time.Hour) }, []string{"job.timeout"}},
		{"max attempts", func(j *tockv1.Job) { j.RetryPolicy = &tockv1.RetryPolicy{MaxAttempts: 101} }, []string{"job.retry_policy.max_attempts"}},
		{"backoff coefficient", func(j *tockv1.Job) { j.RetryPolicy = &tockv1.RetryPolicy{BackoffCoefficient: 0.5} }, []string{"job.retry_policy.backoff_coefficient"}},
		{"negative backoff", func(j *tockv1.Job) { j.RetryPolicy = &tockv1.RetryPolicy{InitialBackoff: dur(-time.Second)} }, []string{"job.retry_policy.initial_backoff"}},
		{"cap below backoff", func(j *tockv1.Job) {
			j.RetryPolicy = &tockv1.RetryPolicy{InitialBackoff: dur(time.Minute), MaxBackoff: dur(time.Second)}
		}, []string{"job.retry_policy.max_backoff"}},
		{"retry jitter", func(j *tockv1.Job) { j.RetryPolicy = &tockv1.RetryPolicy{Jitter: 1.5} }, []string{"job.retry_policy.jitter"}},
		{"schedule-to-start too short", func(j *tockv1.Job) { j.ScheduleToStartTimeout = dur(time.Millisecond) }, []string{"job.schedule_to_start_timeout"}},
		{"schedule-to-start too long", func(j *tockv1.Job) { j.ScheduleToStartTimeout = dur(48 * time.Hour) }, []string{"job.schedule_to_start_timeout"}},
		{"schedule-to-close too long", func(j *tockv1.Job) { j.ScheduleToCloseTimeout = dur(8 * 24 * time.Hour) }, []string{"job.schedule_to_close_timeout"}},
		{"schedule-to-close negative", func(j *tockv1.Job) { j.ScheduleToCloseTimeout = dur(-time.Second) }, []string{"job.schedule_to_close_timeout"}},
		{"misfire action", func(j *tockv1.Job) { j.MisfirePolicy = &tockv1.MisfirePolicy{Action: 42} }, []string{"job.misfire_policy.action"}},
		{"misfire grace", func(j *tockv1.Job) { j.MisfirePolicy = &tockv1.MisfirePolicy{Grace: dur(time.Millisecond)} }, []string{"job.misfire_policy.grace"}},
		{"catch up too many", func(j *tockv1.Job) {
			j.MisfirePolicy = &tockv1.MisfirePolicy{Action: tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP, MaxCatchUp: 5000}
		}, []string{"job.misfire_policy.max_catch_up"}},
		{"catch up window", func(j *tockv1.Job) {
			j.MisfirePolicy = &tockv1.MisfirePolicy{Action: tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP, Window: dur(30 * 24 * time.Hour)}
		}, []string{"job.misfire_policy.window"}},
		{"window without catch up", func(j *tockv1.Job) {
			j.MisfirePolicy = &tockv1.MisfirePolicy{Action: tockv1.MisfireAction_MISFIRE_ACTION_SKIP, Window: dur(time.Hour)}
		}, []string{"job.misfire_policy", "CATCH_UP"}},
		{"overlap action", func(j *tockv1.Job) { j.OverlapPolicy = &tockv1.OverlapPolicy{Action: 42} }, []string{"job.overlap_policy.action"}},
		{"allow-n without n", func(j *tockv1.Job) {
			j.OverlapPolicy = &tockv1.OverlapPolicy{Action: tockv1.OverlapAction_OVERLAP_ACTION_ALLOW_N}
		}, []string{"job.overlap_policy.max_concurrent"}},
		{"n without allow-n", func(j *tockv1.Job) {
			j.OverlapPolicy = &tockv1.OverlapPolicy{Action: tockv1.OverlapAction_OVERLAP_ACTION_FORBID, MaxConcurrent: 3}
		}, []string{"job.overlap_policy.max_concurrent"}},
		{"depends on itself", func(j *tockv1.Job) { j.Schedule = nil; j.DependsOn = []string{"job"} }, []string{"job.depends_on[0]", "itself"}},
		{"depends on a bad name", func(j *tockv1.Job) { j.Schedule = nil; j.DependsOn = []string{"Not_A_Job"} }, []string{"job.depends_on[0]"}},
		{"depends twice", func(j *tockv1.Job) { j.Schedule = nil; j.DependsOn = []string{"upstream", "upstream"} }, []string{"job.depends_on[1]", "twice"}},
		{"depends on a missing job", func(j *tockv1.Job) { j.Schedule = nil; j.DependsOn = []string{"ghost"} }, []string{"job.depends_on", `"ghost", which does not exist`}},
		{"depends with a schedule", func(j *tockv1.Job) { j.DependsOn = []string{"upstream"} }, []string{"job.depends_on", "remove its schedule"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job := &tockv1.Job{Name: "job", Handler: "h", Schedule: cron("@hourly")}
			tt.edit(job)
			_, err := h.jobs.CreateJob(t.Context(), &tockv1.CreateJobRequest{Job: job})
			requireInvalid(t, err, tt.want...)
		})
	}
}

func TestSchedulingPoliciesRoundTrip(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	created := h.createJob(t, &tockv1.Job{
		Name: "full", Handler: "h",
		Schedule: &tockv1.Schedule{
			Trigger: &tockv1.Schedule_Cron{Cron: "0 3 * * *"}, Timezone: "Europe/London",
			Jitter: dur(time.Minute), SpringForward: skipGap, FallBack: runBoth,
		},
		RetryPolicy:            &tockv1.RetryPolicy{MaxAttempts: 4, Jitter: 0.2},
		MisfirePolicy:          &tockv1.MisfirePolicy{Action: tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP, MaxCatchUp: 3},
		OverlapPolicy:          &tockv1.OverlapPolicy{Action: tockv1.OverlapAction_OVERLAP_ACTION_ALLOW_N, MaxConcurrent: 2},
		ScheduleToStartTimeout: dur(time.Minute),
		ScheduleToCloseTimeout: dur(time.Hour),
	})
	require.Equal(t, "1m0s", created.GetSchedule().GetJitter().AsDuration().String())
	require.Equal(t, skipGap, created.GetSchedule().GetSpringForward())
	require.Equal(t, runBoth, created.GetSchedule().GetFallBack())
	require.InDelta(t, 0.2, created.GetRetryPolicy().GetJitter(), 1e-9)
	require.Equal(t, tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP, created.GetMisfirePolicy().GetAction())
	require.Equal(t, int32(3), created.GetMisfirePolicy().GetMaxCatchUp())
	require.Equal(t, time.Hour, created.GetMisfirePolicy().GetWindow().AsDuration(), "the default window")
	require.Equal(t, 5*time.Second, created.GetMisfirePolicy().GetGrace().AsDuration(), "the default grace")
	require.Equal(t, int32(2), created.GetOverlapPolicy().GetMaxConcurrent())
	require.Equal(t, time.Minute, created.GetScheduleToStartTimeout().AsDuration())
	require.Equal(t, time.Hour, created.GetScheduleToCloseTimeout().AsDuration())

	// An update of one field keeps the others.
	resp, err := h.jobs.UpdateJob(t.Context(), &tockv1.UpdateJobRequest{
		Job:        &tockv1.Job{Name: "full", OverlapPolicy: &tockv1.OverlapPolicy{Action: tockv1.OverlapAction_OVERLAP_ACTION_REPLACE}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"overlap_policy"}},
	})
	require.NoError(t, err)
	require.Equal(t, tockv1.OverlapAction_OVERLAP_ACTION_REPLACE, resp.GetJob().GetOverlapPolicy().GetAction())
	require.Equal(t, int32(3), resp.GetJob().GetMisfirePolicy().GetMaxCatchUp())
	require.Equal(t, runBoth, resp.GetJob().GetSchedule().GetFallBack())

	// A job created without policies shows the defaults.
	plain := h.createJob(t, &tockv1.Job{Name: "plain", Handler: "h"})
	require.Equal(t, tockv1.MisfireAction_MISFIRE_ACTION_RUN_ONCE, plain.GetMisfirePolicy().GetAction())
	require.Equal(t, tockv1.OverlapAction_OVERLAP_ACTION_ALLOW, plain.GetOverlapPolicy().GetAction())
	require.Nil(t, plain.GetScheduleToStartTimeout())
}

func TestDependencyCycleRejected(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	h.createJob(t, &tockv1.Job{Name: "a", Handler: "h"})
	h.createJob(t, &tockv1.Job{Name: "b", Handler: "h", DependsOn: []string{"a"}})
	h.createJob(t, &tockv1.Job{Name: "c", Handler: "h", DependsOn: []string{"b"}})
	_, err := h.jobs.UpdateJob(t.Context(), &tockv1.UpdateJobRequest{
		Job:        &tockv1.Job{Name: "a", DependsOn: []string{"c"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"depends_on"}},
	})
	requireInvalid(t, err, "job.depends_on", "a → c → b → a")
	got, err := h.jobs.GetJob(t.Context(), &tockv1.GetJobRequest{Name: "a"})
	require.NoError(t, err)
	require.Empty(t, got.GetJob().GetDependsOn())
}

func TestBackfill(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	h.createJob(t, &tockv1.Job{Name: "hourly", Handler: "h", Schedule: cron("0 * * * *"),
		OverlapPolicy: &tockv1.OverlapPolicy{Action: tockv1.OverlapAction_OVERLAP_ACTION_ALLOW_N, MaxConcurrent: 2}})
	resp, err := h.jobs.BackfillJob(t.Context(), &tockv1.BackfillJobRequest{
		Name: "hourly", Start: at("2026-03-01T00:00:00Z"), End: at("2026-03-01T04:00:00Z"),
	})
	require.NoError(t, err)
	var got []string
	for _, f := range resp.GetFires() {
		got = append(got, f.GetNominalTime().AsTime().Format("15:04")+" "+f.GetOutcome().String())
	}
	require.Equal(t, []string{
		"00:00 FIRE_OUTCOME_DISPATCHED", "01:00 FIRE_OUTCOME_DISPATCHED",
		"02:00 FIRE_OUTCOME_SKIPPED_OVERLAP", "03:00 FIRE_OUTCOME_SKIPPED_OVERLAP",
	}, got, "at most 2 at once")
	execs, err := h.execs.ListExecutions(t.Context(), &tockv1.ListExecutionsRequest{Job: "hourly"})
	require.NoError(t, err)
	require.Len(t, execs.GetExecutions(), 2)
	for _, e := range execs.GetExecutions() {
		require.Equal(t, tockv1.TriggerKind_TRIGGER_KIND_BACKFILL, e.GetTrigger())
	}
	// Again: the times already fired are left as they are.
	resp, err = h.jobs.BackfillJob(t.Context(), &tockv1.BackfillJobRequest{
		Name: "hourly", Start: at("2026-03-01T00:00:00Z"), End: at("2026-03-01T05:00:00Z"),
	})
	require.NoError(t, err)
	require.Len(t, resp.GetFires(), 1)
	require.Equal(t, tockv1.FireOutcome_FIRE_OUTCOME_SKIPPED_OVERLAP, resp.GetFires()[0].GetOutcome())

	_, err = h.jobs.BackfillJob(t.Context(), &tockv1.BackfillJobRequest{Name: "hourly", Start: at("2026-03-01T00:00:00Z")})
	requireInvalid(t, err, "end: is required")
	_, err = h.jobs.BackfillJob(t.Context(), &tockv1.BackfillJobRequest{Name: "hourly", Start: at("2026-03-01T05:00:00Z"), End: at("2026-03-01T04:00:00Z")})
	requireInvalid(t, err, "end", "must be after start")
	_, err = h.jobs.BackfillJob(t.Context(), &tockv1.BackfillJobRequest{Name: "hourly", Start: at("2026-03-01T00:00:00Z"), End: at("2026-03-03T00:00:00Z")})
	requireInvalid(t, err, "end", "in the future")
	h.createJob(t, &tockv1.Job{Name: "secondly", Handler: "h", Schedule: cron("* * * * * *")})
	_, err = h.jobs.BackfillJob(t.Context(), &tockv1.BackfillJobRequest{Name: "secondly", Start: at("2026-03-01T00:00:00Z"), End: at("2026-03-01T12:00:00Z")})
	requireInvalid(t, err, "more than 10000")
	h.createJob(t, &tockv1.Job{Name: "manual", Handler: "h"})
	_, err = h.jobs.BackfillJob(t.Context(), &tockv1.BackfillJobRequest{Name: "manual", Start: at("2026-03-01T00:00:00Z"), End: at("2026-03-01T01:00:00Z")})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	_, err = h.jobs.BackfillJob(t.Context(), &tockv1.BackfillJobRequest{Name: "nope", Start: at("2026-03-01T00:00:00Z"), End: at("2026-03-01T01:00:00Z")})
	require.Equal(t, codes.NotFound, status.Code(err))
}
