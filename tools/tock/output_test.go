package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// jsonOf renders with a JSON printer and returns the text and its decoding.
func jsonOf(t *testing.T, fn func(p *printer) error) (string, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, fn(&printer{w: &buf, format: outputJSON}))
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got), buf.String())
	return buf.String(), got
}

func TestJSONFieldNames(t *testing.T) {
	t.Parallel()

	t.Run("executions", func(t *testing.T) {
		t.Parallel()
		resp := &tockv1.ListExecutionsResponse{Executions: []*tockv1.Execution{{
			Id: "e1", Job: "nightly", State: tockv1.ExecutionState_EXECUTION_STATE_SUCCEEDED,
			Attempt: 1, NominalTime: ts("2026-03-01T03:00:00Z"), Result: structpb.NewStringValue("ok"),
			LeaseEpoch: 12, TraceId: "abc",
		}}}
		text, got := jsonOf(t, func(p *printer) error { return p.json(resp) })
		require.True(t, strings.HasSuffix(text, "}\n"))
		require.Contains(t, text, "\n  \"executions\": [\n", "indented by two spaces")
		require.Contains(t, got, "nextPageToken", "default values are emitted")
		execs := got["executions"].([]any)
		require.Len(t, execs, 1)
		e := execs[0].(map[string]any)
		require.Equal(t, "EXECUTION_STATE_SUCCEEDED", e["state"])
		require.Equal(t, "2026-03-01T03:00:00Z", e["nominalTime"])
		require.Equal(t, "ok", e["result"])
		require.Equal(t, "12", e["leaseEpoch"], "64-bit integers are strings, as in the REST API")
		require.Equal(t, "abc", e["traceId"])
		require.Contains(t, e, "agent")
		require.Contains(t, e, "retryOf")
		require.NotContains(t, e, "startTime", "unset messages are left out")
	})
	t.Run("jobs", func(t *testing.T) {
		t.Parallel()
		resp := &tockv1.GetJobResponse{Job: &tockv1.Job{
			Name: "ping", Handler: "echo",
			Schedule:    &tockv1.Schedule{Trigger: &tockv1.Schedule_Interval{Interval: durationpb.New(90e9)}},
			RetryPolicy: &tockv1.RetryPolicy{MaxAttempts: 3},
		}}
		_, got := jsonOf(t, func(p *printer) error { return p.json(resp) })
		job := got["job"].(map[string]any)
		require.Equal(t, map[string]any{"interval": "90s", "timezone": "", "springForward": "SPRING_FORWARD_UNSPECIFIED", "fallBack": "FALL_BACK_UNSPECIFIED"}, job["schedule"])
		require.Equal(t, 3.0, job["retryPolicy"].(map[string]any)["maxAttempts"])
		require.Equal(t, false, job["paused"])
		require.Equal(t, 0.0, job["priority"])
		require.Contains(t, job, "selector")
	})
	t.Run("agents", func(t *testing.T) {
		t.Parallel()
		resp := &tockv1.ListAgentsResponse{Agents: []*tockv1.Agent{{Id: "a1", InFlight: 2, Connected: true}}}
		_, got := jsonOf(t, func(p *printer) error { return p.json(resp) })
		a := got["agents"].([]any)[0].(map[string]any)
		require.Equal(t, 2.0, a["inFlight"])
		require.Equal(t, true, a["connected"])
		require.Equal(t, []any{}, a["handlers"], "empty lists are emitted")
		require.NotContains(t, a, "lastSeenTime")
	})
	t.Run("fires", func(t *testing.T) {
		t.Parallel()
		resp := &tockv1.ListFiresResponse{Fires: []*tockv1.Fire{{
			Job: "ping", NominalTime: ts("2026-03-01T12:00:00Z"), Outcome: tockv1.FireOutcome_FIRE_OUTCOME_MISSED,
		}}}
		_, got := jsonOf(t, func(p *printer) error { return p.json(resp) })
		f := got["fires"].([]any)[0].(map[string]any)
		require.Equal(t, "FIRE_OUTCOME_MISSED", f["outcome"])
		require.Equal(t, "2026-03-01T12:00:00Z", f["nominalTime"])
		require.Equal(t, "", f["executionId"])
	})
}

func TestJSONIsStable(t *testing.T) {
	t.Parallel()

	resp := &tockv1.GetJobResponse{Job: &tockv1.Job{Name: "ping", Selector: map[string]string{"b": "2", "a": "1"}}}
	first, _ := jsonOf(t, func(p *printer) error { return p.json(resp) })
	for range 5 {
		again, _ := jsonOf(t, func(p *printer) error { return p.json(resp) })
		require.Equal(t, first, again)
	}
	require.NotContains(t, first, ":  ", "no doubled spaces")
}

func TestOutputFlag(t *testing.T) {
	t.Parallel()

	var f outputFormat
	require.NoError(t, f.Set("JSON"))
	require.Equal(t, outputJSON, f)
	require.NoError(t, f.Set("table"))
	require.Equal(t, outputTable, f)
	require.ErrorContains(t, f.Set("yaml"), "want table or json")
}
