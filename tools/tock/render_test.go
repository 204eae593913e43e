package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// render runs fn on a table printer and returns what it wrote.
func render(t *testing.T, fn func(p *printer) error) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, fn(&printer{w: &buf, format: outputTable, now: func() time.Time { return testNow }}))
	return buf.String()
}

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func TestRenderJobs(t *testing.T) {
	t.Parallel()

	jobs := []*tockv1.Job{
		{
			Name: "nightly-report", Handler: "report",
			Schedule:     &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "0 3 * * *"}, Timezone: "Europe/London"},
			NextFireTime: ts("2026-03-02T03:00:00Z"),
		},
		{
			Name: "ping", Handler: "echo",
			Schedule:     &tockv1.Schedule{Trigger: &tockv1.Schedule_Interval{Interval: durationpb.New(90 * time.Second)}},
			NextFireTime: ts("2026-03-01T12:01:30+01:00"),
			Paused:       true,
		},
		{
			Name: "once", Handler: "migrate",
			Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_At{At: ts("2026-04-01T00:00:00Z")}},
		},
		{Name: "manual", Handler: "echo"},
	}
	got := render(t, func(p *printer) error { return p.jobs(jobs) })
	require.Equal(t, lines(
		"NAME             HANDLER   SCHEDULE                         NEXT FIRE              PAUSED",
		"nightly-report   report    cron 0 3 * * * (Europe/London)   2026-03-02T03:00:00Z   no",
		"ping             echo      every 1m30s                      2026-03-01T11:01:30Z   yes",
		"once             migrate   at 2026-04-01T00:00:00Z          -                      no",
		"manual           echo      manual                           -                      no",
	), got)
}

func TestRenderJob(t *testing.T) {
	t.Parallel()

	payload, err := structpb.NewValue(map[string]any{"day": "yesterday"})
	require.NoError(t, err)
	job := &tockv1.Job{
		Name: "nightly-report", Handler: "report", Service: "billing",
		Selector: map[string]string{"zone": "a", "env": "prod"},
		Schedule: &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "0 3 * * *"}},
		Payload:  payload,
		Timeout:  durationpb.New(30 * time.Second),
		RetryPolicy: &tockv1.RetryPolicy{
			MaxAttempts: 4, InitialBackoff: durationpb.New(time.Second), BackoffCoefficient: 1.5,
			NonRetryableErrorKinds: []string{"BadInput", "Forbidden"},
		},
		Priority:     -5,
		NextFireTime: ts("2026-03-02T03:00:00Z"),
		CreateTime:   ts("2026-01-01T00:00:00Z"),
		UpdateTime:   ts("2026-02-01T00:00:00Z"),
		Version:      3,
	}
	got := render(t, func(p *printer) error { return p.job(job) })
	require.Equal(t, lines(
		"Name:           nightly-report",
		"Handler:        report",
		"Service:        billing",
		"Selector:       env=prod,zone=a",
		"Schedule:       cron 0 3 * * *",
		"Next fire:      2026-03-02T03:00:00Z",
		"Paused:         no",
		`Payload:        {"day":"yesterday"}`,
		"Timeout:        30s",
		"Max attempts:   4",
		"Backoff:        initial 1s, factor 1.5",
		"Non-retryable:  BadInput, Forbidden",
		"Priority:       -5",
		"Created:        2026-01-01T00:00:00Z",
		"Updated:        2026-02-01T00:00:00Z",
		"Version:        3",
	), got)

	t.Run("empty job", func(t *testing.T) {
		t.Parallel()
		got := render(t, func(p *printer) error { return p.job(&tockv1.Job{}) })
		require.Contains(t, got, "Schedule:      manual\n")
		require.Contains(t, got, "Max attempts:  default\n")
		require.Contains(t, got, "Backoff:       default\n")
		require.Contains(t, got, "Selector:      -\n")
	})
}

func TestRenderExecutions(t *testing.T) {
	t.Parallel()

	result, err := structpb.NewValue(map[string]any{"rows": 1200.0, "file": "s3://reports/2026-02-28/summary.csv"})
	require.NoError(t, err)
	execs := []*tockv1.Execution{
		{
			Id: "0190c1de-0001-7000-8000-000000000001", Job: "nightly-report", Attempt: 1,
			State: tockv1.ExecutionState_EXECUTION_STATE_SUCCEEDED, Agent: "agent-1",
			NominalTime: ts("2026-03-01T03:00:00Z"),
			StartTime:   ts("2026-03-01T03:00:00.120Z"), FinishTime: ts("2026-03-01T03:00:02.5Z"),
			Result: result,
		},
		{
			Id: "0190c1de-0002-7000-8000-000000000002", Job: "nightly-report", Attempt: 2,
			State: tockv1.ExecutionState_EXECUTION_STATE_FAILED, Agent: "agent-2",
			NominalTime: ts("2026-03-01T03:00:00Z"),
			StartTime:   ts("2026-03-01T03:00:05Z"), FinishTime: ts("2026-03-01T03:00:05.25Z"),
			Error: &tockv1.ExecutionError{Kind: "Timeout", Message: "upstream\tdid not answer\nin time", Retryable: true},
		},
		{
			Id: "0190c1de-0003-7000-8000-000000000003", Job: "ping", Attempt: 1,
			State: tockv1.ExecutionState_EXECUTION_STATE_RUNNING, Agent: "agent-1",
			NominalTime: ts("2026-03-01T11:58:00Z"), StartTime: ts("2026-03-01T11:58:00Z"),
		},
		{
			Id: "0190c1de-0004-7000-8000-000000000004", Job: "ping", Attempt: 1,
			State:       tockv1.ExecutionState_EXECUTION_STATE_TIMED_OUT,
			NominalTime: ts("2026-03-01T11:59:00Z"), Result: structpb.NewStringValue("plain text"),
		},
		{
			Id: "0190c1de-0005-7000-8000-000000000005", Job: "ping",
			State: tockv1.ExecutionState_EXECUTION_STATE_PENDING,
		},
	}
	got := render(t, func(p *printer) error { return p.executions(execs) })
	require.Equal(t, lines(
		"ID                                     JOB              STATE       ATTEMPT   AGENT     NOMINAL TIME           DURATION   RESULT",
		`0190c1de-0001-7000-8000-000000000001   nightly-report   SUCCEEDED   1         agent-1   2026-03-01T03:00:00Z   2.38s      {"file":"s3://reports/2026-02-28/summar…`,
		"0190c1de-0002-7000-8000-000000000002   nightly-report   FAILED      2         agent-2   2026-03-01T03:00:00Z   250ms      Timeout: upstream did not answer in tim…",
		"0190c1de-0003-7000-8000-000000000003   ping             RUNNING     1         agent-1   2026-03-01T11:58:00Z   2m0s       -",
		"0190c1de-0004-7000-8000-000000000004   ping             TIMED_OUT   1         -         2026-03-01T11:59:00Z   -          plain text",
		"0190c1de-0005-7000-8000-000000000005   ping             PENDING     0         -         -                      -          -",
	), got)
}

func TestRenderExecution(t *testing.T) {
	t.Parallel()

	result, err := structpb.NewValue(map[string]any{"ok": true})
	require.NoError(t, err)
	e := &tockv1.Execution{
		Id: "0190c1de-0002-7000-8000-000000000002", Job: "nightly-report", Handler: "report",
		State: tockv1.ExecutionState_EXECUTION_STATE_FAILED, Attempt: 2,
		Trigger: tockv1.TriggerKind_TRIGGER_KIND_RETRY, RetryOf: "0190c1de-0001-7000-8000-000000000001",
		Agent: "agent-2", NominalTime: ts("2026-03-01T03:00:00Z"), CreateTime: ts("2026-03-01T03:00:01Z"),
		NotBefore: ts("2026-03-01T03:00:03Z"),
		StartTime: ts("2026-03-01T03:00:05Z"), FinishTime: ts("2026-03-01T03:01:05.4Z"),
		LeaseEpoch: 7, TraceId: "4bf92f3577b34da6a3ce929d0e0e4736",
		Result: result,
		Error:  &tockv1.ExecutionError{Kind: "Upstream", Message: "first line\nsecond line"},
	}
	got := render(t, func(p *printer) error { return p.execution(e) })
	require.Equal(t, lines(
		"ID:            0190c1de-0002-7000-8000-000000000002",
		"Job:           nightly-report",
		"Handler:       report",
		"State:         FAILED",
		"Attempt:       2",
		"Trigger:       RETRY",
		"Retry of:      0190c1de-0001-7000-8000-000000000001",
		"Agent:         agent-2",
		"Nominal time:  2026-03-01T03:00:00Z",
		"Created:       2026-03-01T03:00:01Z",
		"Not before:    2026-03-01T03:00:03Z",
		"Started:       2026-03-01T03:00:05Z",
		"Finished:      2026-03-01T03:01:05Z",
		"Duration:      1m0s",
		"Lease epoch:   7",
		"Trace ID:      4bf92f3577b34da6a3ce929d0e0e4736",
		"Result:        {",
		`                 "ok": true`,
		"               }",
		"Error:         Upstream: first line",
		"               second line",
	), got)
}

func TestRenderAgents(t *testing.T) {
	t.Parallel()

	agents := []*tockv1.Agent{
		{Id: "agent-1", Service: "billing", Address: "10.0.0.5:7401", Weight: 2, Capacity: 16, InFlight: 3, Connected: true},
		{Id: "agent-2", Service: "billing", Address: "10.0.0.6:7401", Weight: 1, Capacity: 8, Connected: true, Draining: true},
		{Id: "agent-3", Service: "search", Address: "unix:///run/tock.sock", Weight: 1, Capacity: 4},
	}
	got := render(t, func(p *printer) error { return p.agents(agents) })
	require.Equal(t, lines(
		"ID        SERVICE   ADDRESS                 WEIGHT   CAPACITY   IN-FLIGHT   CONNECTED",
		"agent-1   billing   10.0.0.5:7401           2        16         3           yes",
		"agent-2   billing   10.0.0.6:7401           1        8          0           yes (draining)",
		"agent-3   search    unix:///run/tock.sock   1        4          0           no",
	), got)
}

func TestRenderFires(t *testing.T) {
	t.Parallel()

	fires := []*tockv1.Fire{
		{
			Job: "ping", NominalTime: ts("2026-03-01T12:00:00Z"), FireTime: ts("2026-03-01T12:00:00.012Z"),
			Outcome: tockv1.FireOutcome_FIRE_OUTCOME_DISPATCHED, ExecutionId: "0190c1de-0003-7000-8000-000000000003",
		},
		{
			Job: "ping", NominalTime: ts("2026-03-01T11:59:00Z"), FireTime: ts("2026-03-01T11:59:01.5Z"),
			Outcome: tockv1.FireOutcome_FIRE_OUTCOME_SKIPPED_OVERLAP,
		},
		{
			Job: "ping", NominalTime: ts("2026-03-01T11:58:00Z"), FireTime: ts("2026-03-01T11:57:59.9Z"),
			Outcome: tockv1.FireOutcome_FIRE_OUTCOME_SKIPPED_PAUSED,
		},
		{Job: "ping", NominalTime: ts("2026-03-01T09:00:00Z"), Outcome: tockv1.FireOutcome_FIRE_OUTCOME_MISSED},
	}
	got := render(t, func(p *printer) error { return p.fires(fires) })
	require.Equal(t, lines(
		"NOMINAL TIME           OUTCOME           EXECUTION                              LATENESS",
		"2026-03-01T12:00:00Z   DISPATCHED        0190c1de-0003-7000-8000-000000000003   12ms",
		"2026-03-01T11:59:00Z   SKIPPED_OVERLAP   -                                      1.5s",
		"2026-03-01T11:58:00Z   SKIPPED_PAUSED    -                                      -100ms",
		"2026-03-01T09:00:00Z   MISSED            -                                      -",
	), got)
}

func TestRenderHostileText(t *testing.T) {
	t.Parallel()

	jobs := []*tockv1.Job{{Name: "evil\x1b[31mred\x1b[0m\tname\nnext", Handler: "h\xff"}}
	got := render(t, func(p *printer) error { return p.jobs(jobs) })
	require.NotContains(t, got, "\x1b")
	require.Equal(t, 2, strings.Count(got, "\n"), "one header line and one row: %q", got)
	require.Contains(t, got, "evil[31mred[0m name next")
	require.Contains(t, got, "h\uFFFD")
}

func TestRenderUnknownEnums(t *testing.T) {
	t.Parallel()

	e := &tockv1.Execution{State: tockv1.ExecutionState(42), Trigger: tockv1.TriggerKind(9)}
	got := render(t, func(p *printer) error { return p.execution(e) })
	require.Contains(t, got, "State:         42\n")
	require.Contains(t, got, "Trigger:       9\n")
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()

	tests := map[time.Duration]string{
		0:                                     "0s",
		400 * time.Microsecond:                "0s",
		1500 * time.Microsecond:               "2ms",
		350 * time.Millisecond:                "350ms",
		1234 * time.Millisecond:               "1.23s",
		61*time.Second + 400*time.Millisecond: "1m1s",
		-250 * time.Millisecond:               "-250ms",
		time.Duration(-1 << 63):               time.Duration(-1 << 63).String(),
	}
	for in, want := range tests {
		require.Equal(t, want, humanDuration(in), "humanDuration(%d)", int64(in))
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()

	require.Equal(t, "short", truncate("short", 40))
	require.Equal(t, strings.Repeat("é", 40), truncate(strings.Repeat("é", 40), 40))
	require.Equal(t, strings.Repeat("é", 39)+"…", truncate(strings.Repeat("é", 41), 40))
}

// FuzzRenderExecution renders executions decoded from arbitrary bytes: no input may make
// the table or block rendering panic.
func FuzzRenderExecution(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x0a\x03abc\x18\x2a\x62\x02\x08\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e := &tockv1.Execution{}
		if proto.Unmarshal(data, e) != nil {
			return
		}
		var buf bytes.Buffer
		p := &printer{w: &buf, format: outputTable, now: func() time.Time { return testNow }}
		require.NoError(t, p.executions([]*tockv1.Execution{e}))
		require.NoError(t, p.execution(e))
	})
}
