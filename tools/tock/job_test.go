package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// writeFile writes content to a new file in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// changedSet is a flag "changed" function for the given flag names.
func changedSet(names ...string) func(string) bool {
	return func(name string) bool {
		for _, n := range names {
			if n == name {
				return true
			}
		}
		return false
	}
}

func requireProto(t *testing.T, want, got proto.Message) {
	t.Helper()
	require.True(t, proto.Equal(want, got), "want %v\n got %v", want, got)
}

func TestJobCreateRequest(t *testing.T) {
	t.Parallel()

	t.Run("all flags", func(t *testing.T) {
		t.Parallel()
		f := jobCreateFlags{
			handler:     "report",
			service:     "billing",
			selector:    []string{"env=prod,zone=a"},
			schedule:    scheduleFlags{cron: "0 3 * * *", timezone: "Europe/London"},
			payload:     payloadSource{inline: `{"day": "yesterday"}`},
			timeout:     30 * time.Second,
			maxAttempts: 5,
			priority:    -10,
		}
		got, err := f.request([]string{"nightly"}, changedSet("payload", "timeout", "max-attempts", "priority"), nil)
		require.NoError(t, err)
		payload, err := structpb.NewValue(map[string]any{"day": "yesterday"})
		require.NoError(t, err)
		requireProto(t, &tockv1.CreateJobRequest{Job: &tockv1.Job{
			Name:        "nightly",
			Handler:     "report",
			Service:     "billing",
			Selector:    map[string]string{"env": "prod", "zone": "a"},
			Schedule:    &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: "0 3 * * *"}, Timezone: "Europe/London"},
			Payload:     payload,
			Timeout:     durationpb.New(30 * time.Second),
			RetryPolicy: &tockv1.RetryPolicy{MaxAttempts: 5},
			Priority:    -10,
		}}, got)
	})

	t.Run("minimal job runs on trigger only", func(t *testing.T) {
		t.Parallel()
		f := jobCreateFlags{handler: "echo"}
		got, err := f.request([]string{"ping"}, changedSet(), nil)
		require.NoError(t, err)
		requireProto(t, &tockv1.CreateJobRequest{Job: &tockv1.Job{Name: "ping", Handler: "echo"}}, got)
	})

	invalid := []struct {
		name    string
		flags   jobCreateFlags
		args    []string
		changed []string
		msg     string
	}{
		{"no name", jobCreateFlags{handler: "echo"}, nil, nil, "give the job's NAME, or -f FILE"},
		{"no handler", jobCreateFlags{}, []string{"ping"}, nil, "--handler is required"},
		{"bad payload", jobCreateFlags{handler: "echo", payload: payloadSource{inline: "{x}"}}, []string{"ping"}, []string{"payload"}, "invalid --payload: not valid JSON"},
		{"bad selector", jobCreateFlags{handler: "echo", selector: []string{"zone"}}, []string{"ping"}, nil, `invalid --selector "zone"`},
		{"bad every", jobCreateFlags{handler: "echo", schedule: scheduleFlags{every: "soon"}}, []string{"ping"}, nil, `invalid --every "soon"`},
		{"zero timeout", jobCreateFlags{handler: "echo"}, []string{"ping"}, []string{"timeout"}, "invalid --timeout 0s"},
		{"zero attempts", jobCreateFlags{handler: "echo"}, []string{"ping"}, []string{"max-attempts"}, "invalid --max-attempts 0"},
		{"file with flags", jobCreateFlags{file: "job.json", handler: "echo"}, nil, []string{"handler"}, "-f cannot be combined with --handler"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.flags.request(tc.args, changedSet(tc.changed...), nil)
			requireUsageError(t, err, tc.msg)
		})
	}
}

// restJob is a job as a REST client posts it: lowerCamelCase names, durations as strings.
const restJob = `{
  "name": "nightly",
  "handler": "report",
  "selector": {"env": "prod"},
  "schedule": {"cron": "0 3 * * *", "timezone": "Europe/London"},
  "payload": {"day": "yesterday"},
  "timeout": "30s",
  "retryPolicy": {"maxAttempts": 4, "initialBackoff": "2s", "nonRetryableErrorKinds": ["BadInput"]},
  "priority": 5
}`

func TestJobCreateFromFile(t *testing.T) {
	t.Parallel()

	want := &tockv1.Job{}
	require.NoError(t, protojson.Unmarshal([]byte(restJob), want))
	require.Equal(t, "nightly", want.GetName())
	require.Equal(t, int32(4), want.GetRetryPolicy().GetMaxAttempts())

	t.Run("file", func(t *testing.T) {
		t.Parallel()
		f := jobCreateFlags{file: writeFile(t, "job.json", restJob)}
		got, err := f.request(nil, changedSet("file"), nil)
		require.NoError(t, err)
		requireProto(t, &tockv1.CreateJobRequest{Job: want}, got)
	})
	t.Run("stdin", func(t *testing.T) {
		t.Parallel()
		f := jobCreateFlags{file: "-"}
		got, err := f.request(nil, changedSet("file"), strings.NewReader(restJob))
		require.NoError(t, err)
		requireProto(t, &tockv1.CreateJobRequest{Job: want}, got)
	})
	t.Run("proto field names", func(t *testing.T) {
		t.Parallel()
		f := jobCreateFlags{file: writeFile(t, "job.json", `{"name": "a", "handler": "h", "retry_policy": {"max_attempts": 2}}`)}
		got, err := f.request(nil, changedSet("file"), nil)
		require.NoError(t, err)
		require.Equal(t, int32(2), got.GetJob().GetRetryPolicy().GetMaxAttempts())
	})
	t.Run("name argument fills a nameless file", func(t *testing.T) {
		t.Parallel()
		f := jobCreateFlags{file: writeFile(t, "job.json", `{"handler": "h"}`)}
		got, err := f.request([]string{"from-arg"}, changedSet("file"), nil)
		require.NoError(t, err)
		require.Equal(t, "from-arg", got.GetJob().GetName())
	})
	t.Run("name argument must agree", func(t *testing.T) {
		t.Parallel()
		f := jobCreateFlags{file: writeFile(t, "job.json", restJob)}
		_, err := f.request([]string{"other"}, changedSet("file"), nil)
		requireUsageError(t, err, `NAME "other" differs from the name "nightly"`)
	})
	t.Run("unknown field", func(t *testing.T) {
		t.Parallel()
		f := jobCreateFlags{file: writeFile(t, "job.json", `{"name": "a", "handlr": "h"}`)}
		_, err := f.request(nil, changedSet("file"), nil)
		require.ErrorContains(t, err, "job.json: not a valid Job")
		require.ErrorContains(t, err, "handlr")
	})
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		f := jobCreateFlags{file: filepath.Join(t.TempDir(), "none.json")}
		_, err := f.request(nil, changedSet("file"), nil)
		require.ErrorContains(t, err, "read job file")
	})
}

func TestJobCreateCommand(t *testing.T) {
	t.Parallel()

	t.Run("flags become the request", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var got *tockv1.CreateJobRequest
		h.jobs.CreateJobFunc = func(req *tockv1.CreateJobRequest) (*tockv1.CreateJobResponse, error) {
			got = req
			job := proto.Clone(req.GetJob()).(*tockv1.Job)
			job.NextFireTime = timestamppb.New(time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC))
			job.Version = 1
			return &tockv1.CreateJobResponse{Job: job}, nil
		}
		r := h.run(t, "job", "create", "ping", "--handler", "echo", "--every", "30s",
			"--selector", "env=prod", "--selector", "zone=a",
			"--payload", `{"msg":"hi"}`, "--timeout", "45s", "--max-attempts", "2", "--priority", "7")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "ping", got.GetJob().GetName())
		require.Equal(t, "echo", got.GetJob().GetHandler())
		require.Equal(t, map[string]string{"env": "prod", "zone": "a"}, got.GetJob().GetSelector())
		require.Equal(t, 30*time.Second, got.GetJob().GetSchedule().GetInterval().AsDuration())
		require.Equal(t, "hi", got.GetJob().GetPayload().GetStructValue().GetFields()["msg"].GetStringValue())
		require.Equal(t, 45*time.Second, got.GetJob().GetTimeout().AsDuration())
		require.Equal(t, int32(2), got.GetJob().GetRetryPolicy().GetMaxAttempts())
		require.Equal(t, int32(7), got.GetJob().GetPriority())
		// --timeout on this command is the job's; the call keeps the default deadline.
		require.Equal(t, defaultCallTimeout, h.conn.Timeout)
		require.Contains(t, r.stdout, "Name:          ping\n")
		require.Contains(t, r.stdout, "Next fire:     2026-03-02T03:00:00Z\n")
	})

	t.Run("payload from a file on stdin", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.stdin = `[1, 2, 3]`
		var got *tockv1.CreateJobRequest
		h.jobs.CreateJobFunc = func(req *tockv1.CreateJobRequest) (*tockv1.CreateJobResponse, error) {
			got = req
			return &tockv1.CreateJobResponse{Job: req.GetJob()}, nil
		}
		r := h.run(t, "job", "create", "ping", "--handler", "echo", "--payload-file", "-")
		require.Equal(t, 0, r.code, r.stderr)
		require.Len(t, got.GetJob().GetPayload().GetListValue().GetValues(), 3)
	})

	usage := []struct {
		args []string
		msg  string
	}{
		{[]string{"job", "create", "ping", "--handler", "echo", "--payload", "{oops"}, "invalid --payload: not valid JSON"},
		{[]string{"job", "create", "ping"}, "--handler is required"},
		{[]string{"job", "create", "ping", "--handler", "echo", "--cron", "@daily", "--every", "1h"}, "give one of --cron, --every or --at"},
		{[]string{"job", "create", "ping", "--handler", "echo", "--at", "noon"}, `invalid --at "noon"`},
		{[]string{"job", "create", "ping", "--handler", "echo", "--max-attempts", "many"}, `invalid argument "many" for "--max-attempts"`},
		{[]string{"job", "create", "-f", "job.json", "--every", "1h"}, "-f cannot be combined with --every"},
		{[]string{"job", "create", "a", "b", "--handler", "echo"}, `unexpected argument "b"`},
	}
	for _, tc := range usage {
		t.Run(tc.msg, func(t *testing.T) {
			t.Parallel()
			h := setup(t)
			r := h.run(t, tc.args...)
			require.Equal(t, exitUsage, r.code)
			require.Contains(t, r.stderr, "tock: "+tc.msg)
			require.Contains(t, r.stderr, "Run 'tock job create --help' for usage.")
			require.Empty(t, r.stdout)
			require.Nil(t, h.conn, "no connection for a usage error")
		})
	}
}

func TestJobCommands(t *testing.T) {
	t.Parallel()

	job := &tockv1.Job{Name: "nightly", Handler: "report", Paused: true}

	t.Run("get", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.jobs.GetJobFunc = func(req *tockv1.GetJobRequest) (*tockv1.GetJobResponse, error) {
			require.Equal(t, "nightly", req.GetName())
			return &tockv1.GetJobResponse{Job: job}, nil
		}
		r := h.run(t, "job", "get", "nightly")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "Name:          nightly\nHandler:       report\n")
		require.Contains(t, r.stdout, "Paused:        yes\n")

		// As GET /v1/jobs/{name} does, JSON output is the job itself.
		r = h.run(t, "job", "get", "nightly", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		got := &tockv1.Job{}
		require.NoError(t, protojson.Unmarshal([]byte(r.stdout), got))
		requireProto(t, job, got)
	})
	t.Run("empty answer", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.jobs.GetJobFunc = func(*tockv1.GetJobRequest) (*tockv1.GetJobResponse, error) {
			return &tockv1.GetJobResponse{}, nil
		}
		r := h.run(t, "job", "get", "nightly", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, protojson.Unmarshal([]byte(r.stdout), &tockv1.Job{}))
		r = h.run(t, "job", "get", "nightly")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "Name:          -\n")
	})
	t.Run("delete", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var got string
		h.jobs.DeleteJobFunc = func(req *tockv1.DeleteJobRequest) (*tockv1.DeleteJobResponse, error) {
			got = req.GetName()
			return &tockv1.DeleteJobResponse{}, nil
		}
		r := h.run(t, "job", "delete", "nightly")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "nightly", got)
		require.Equal(t, "deleted job nightly\n", r.stdout)

		r = h.run(t, "job", "delete", "nightly", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		require.JSONEq(t, `{}`, r.stdout)
	})
	t.Run("pause and resume", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var calls []string
		h.jobs.PauseJobFunc = func(req *tockv1.PauseJobRequest) (*tockv1.PauseJobResponse, error) {
			calls = append(calls, "pause "+req.GetName())
			return &tockv1.PauseJobResponse{Job: job}, nil
		}
		h.jobs.ResumeJobFunc = func(req *tockv1.ResumeJobRequest) (*tockv1.ResumeJobResponse, error) {
			calls = append(calls, "resume "+req.GetName())
			return &tockv1.ResumeJobResponse{Job: &tockv1.Job{Name: req.GetName()}}, nil
		}
		require.Equal(t, 0, h.run(t, "job", "pause", "nightly").code)
		r := h.run(t, "job", "resume", "nightly")
		require.Equal(t, 0, r.code)
		require.Contains(t, r.stdout, "Paused:        no\n")
		require.Equal(t, []string{"pause nightly", "resume nightly"}, calls)
	})
	t.Run("trigger with payload", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var got *tockv1.TriggerJobRequest
		h.jobs.TriggerJobFunc = func(req *tockv1.TriggerJobRequest) (*tockv1.TriggerJobResponse, error) {
			got = req
			return &tockv1.TriggerJobResponse{Execution: &tockv1.Execution{
				Id: "0190c1de-0000-7000-8000-000000000001", Job: req.GetName(),
				State: tockv1.ExecutionState_EXECUTION_STATE_PENDING, Attempt: 1,
				Trigger: tockv1.TriggerKind_TRIGGER_KIND_MANUAL,
			}}, nil
		}
		r := h.run(t, "job", "trigger", "nightly", "--payload", `"now"`, "--request-id", "run-2026-03-01")
		require.Equal(t, 0, r.code, r.stderr)
		requireProto(t, &tockv1.TriggerJobRequest{Name: "nightly", Payload: structpb.NewStringValue("now"), RequestId: "run-2026-03-01"}, got)
		require.Contains(t, r.stdout, "ID:            0190c1de-0000-7000-8000-000000000001\n")
		require.Contains(t, r.stdout, "State:         PENDING\n")
		require.Contains(t, r.stdout, "Trigger:       MANUAL\n")

		// As POST /v1/jobs/{name}:trigger does, JSON output is the execution itself.
		r = h.run(t, "job", "trigger", "nightly", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &e))
		require.Equal(t, "EXECUTION_STATE_PENDING", e["state"])
		require.Equal(t, "TRIGGER_KIND_MANUAL", e["trigger"])
	})
	t.Run("trigger without payload", func(t *testing.T) {
		t.Parallel()
		f := jobTriggerFlags{}
		got, err := f.request("nightly", changedSet(), nil)
		require.NoError(t, err)
		requireProto(t, &tockv1.TriggerJobRequest{Name: "nightly"}, got)
	})
	t.Run("list follows pages", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var reqs []*tockv1.ListJobsRequest
		h.jobs.ListJobsFunc = func(req *tockv1.ListJobsRequest) (*tockv1.ListJobsResponse, error) {
			reqs = append(reqs, req)
			if req.GetPageToken() == "" {
				return &tockv1.ListJobsResponse{Jobs: []*tockv1.Job{{Name: "a"}, {Name: "b"}}, NextPageToken: "p2"}, nil
			}
			return &tockv1.ListJobsResponse{Jobs: []*tockv1.Job{{Name: "c"}}}, nil
		}
		r := h.run(t, "job", "list", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		require.Len(t, reqs, 2)
		require.Equal(t, int32(maxPageSize), reqs[0].GetPageSize())
		require.Equal(t, "p2", reqs[1].GetPageToken())
		got := &tockv1.ListJobsResponse{}
		require.NoError(t, protojson.Unmarshal([]byte(r.stdout), got))
		require.Len(t, got.GetJobs(), 3)
		require.Empty(t, got.GetNextPageToken())
	})
	t.Run("list with limit", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.jobs.ListJobsFunc = func(req *tockv1.ListJobsRequest) (*tockv1.ListJobsResponse, error) {
			require.Equal(t, int32(1), req.GetPageSize())
			return &tockv1.ListJobsResponse{Jobs: []*tockv1.Job{{Name: "a"}}, NextPageToken: "more"}, nil
		}
		r := h.run(t, "job", "list", "--limit", "1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "NAME   HANDLER   SCHEDULE   NEXT FIRE   PAUSED\na      -         manual     -           no\n", r.stdout)
	})
	t.Run("fires", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var got *tockv1.ListFiresRequest
		h.jobs.ListFiresFunc = func(req *tockv1.ListFiresRequest) (*tockv1.ListFiresResponse, error) {
			got = req
			return &tockv1.ListFiresResponse{}, nil
		}
		r := h.run(t, "job", "fires", "nightly", "--limit", "5")
		require.Equal(t, 0, r.code, r.stderr)
		requireProto(t, &tockv1.ListFiresRequest{Job: "nightly", PageSize: 5}, got)
		require.Equal(t, "NOMINAL TIME   OUTCOME   EXECUTION   LATENESS\n", r.stdout)
	})
	t.Run("server error", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.jobs.GetJobFunc = func(req *tockv1.GetJobRequest) (*tockv1.GetJobResponse, error) {
			return nil, status.Errorf(codes.NotFound, "job %q not found", req.GetName())
		}
		r := h.run(t, "job", "get", "nightly")
		require.Equal(t, exitError, r.code)
		require.Equal(t, "tock: not found: job \"nightly\" not found\n", r.stderr)
		require.Empty(t, r.stdout)
	})
}
