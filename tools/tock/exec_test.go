package main

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func TestExecListRequest(t *testing.T) {
	t.Parallel()

	f := execListFlags{job: "nightly", state: "timed-out", limit: 10}
	got, err := f.request()
	require.NoError(t, err)
	requireProto(t, &tockv1.ListExecutionsRequest{Job: "nightly", State: tockv1.ExecutionState_EXECUTION_STATE_TIMED_OUT}, got)

	f = execListFlags{state: "done"}
	_, err = f.request()
	requireUsageError(t, err, `invalid --state "done"`)

	f = execListFlags{limit: -3}
	_, err = f.request()
	requireUsageError(t, err, "invalid --limit -3")
}

func TestExecCommands(t *testing.T) {
	t.Parallel()

	t.Run("list with filters and limit", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var reqs []*tockv1.ListExecutionsRequest
		h.execs.ListExecutionsFunc = func(req *tockv1.ListExecutionsRequest) (*tockv1.ListExecutionsResponse, error) {
			reqs = append(reqs, req)
			// The server pages by two whatever it is asked.
			if req.GetPageToken() == "" {
				return &tockv1.ListExecutionsResponse{Executions: []*tockv1.Execution{{Id: "e1"}, {Id: "e2"}}, NextPageToken: "t2"}, nil
			}
			return &tockv1.ListExecutionsResponse{Executions: []*tockv1.Execution{{Id: "e3"}}, NextPageToken: "t3"}, nil
		}
		r := h.run(t, "exec", "list", "--job", "nightly", "--state", "failed", "--limit", "3", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		require.Len(t, reqs, 2)
		for _, req := range reqs {
			require.Equal(t, "nightly", req.GetJob())
			require.Equal(t, tockv1.ExecutionState_EXECUTION_STATE_FAILED, req.GetState())
		}
		require.Equal(t, int32(3), reqs[0].GetPageSize())
		require.Equal(t, int32(1), reqs[1].GetPageSize())
		require.Equal(t, "t2", reqs[1].GetPageToken())

		got := &tockv1.ListExecutionsResponse{}
		require.NoError(t, protojson.Unmarshal([]byte(r.stdout), got))
		require.Len(t, got.GetExecutions(), 3)
		require.Equal(t, "t3", got.GetNextPageToken(), "the token continues after the last execution shown")
	})
	t.Run("list defaults to 100", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var got *tockv1.ListExecutionsRequest
		h.execs.ListExecutionsFunc = func(req *tockv1.ListExecutionsRequest) (*tockv1.ListExecutionsResponse, error) {
			got = req
			return &tockv1.ListExecutionsResponse{}, nil
		}
		r := h.run(t, "exec", "list")
		require.Equal(t, 0, r.code, r.stderr)
		requireProto(t, &tockv1.ListExecutionsRequest{PageSize: 100}, got)
		require.Equal(t, "ID   JOB   STATE   ATTEMPT   AGENT   NOMINAL TIME   DURATION   RESULT\n", r.stdout)
	})
	t.Run("list with a bad state", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		r := h.run(t, "exec", "list", "--state", "exploded")
		require.Equal(t, exitUsage, r.code)
		require.Contains(t, r.stderr, `tock: invalid --state "exploded": want one of pending, assigned, running, succeeded, failed, timed_out, cancelled, lost`)
		require.Contains(t, r.stderr, "Run 'tock exec list --help' for usage.")
	})
	t.Run("get", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.execs.GetExecutionFunc = func(req *tockv1.GetExecutionRequest) (*tockv1.GetExecutionResponse, error) {
			return &tockv1.GetExecutionResponse{Execution: &tockv1.Execution{Id: req.GetId(), State: tockv1.ExecutionState_EXECUTION_STATE_LOST}}, nil
		}
		r := h.run(t, "exec", "get", "e1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "ID:            e1\n")
		require.Contains(t, r.stdout, "State:         LOST\n")
	})
	t.Run("cancel with reason", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var got *tockv1.CancelExecutionRequest
		h.execs.CancelExecutionFunc = func(req *tockv1.CancelExecutionRequest) (*tockv1.CancelExecutionResponse, error) {
			got = req
			return &tockv1.CancelExecutionResponse{Execution: &tockv1.Execution{Id: req.GetId(), State: tockv1.ExecutionState_EXECUTION_STATE_CANCELLED}}, nil
		}
		r := h.run(t, "exec", "cancel", "e1", "--reason", "wrong input", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		requireProto(t, &tockv1.CancelExecutionRequest{Id: "e1", Reason: "wrong input"}, got)
		require.Contains(t, r.stdout, `"state": "EXECUTION_STATE_CANCELLED"`)
	})
}

func TestAgentList(t *testing.T) {
	t.Parallel()

	h := setup(t)
	var got *tockv1.ListAgentsRequest
	h.agents.ListAgentsFunc = func(req *tockv1.ListAgentsRequest) (*tockv1.ListAgentsResponse, error) {
		got = req
		return &tockv1.ListAgentsResponse{Agents: []*tockv1.Agent{{Id: "a1", Service: "billing", Weight: 1, Capacity: 4, Connected: true}}}, nil
	}
	r := h.run(t, "agent", "list", "--service", "billing")
	require.Equal(t, 0, r.code, r.stderr)
	requireProto(t, &tockv1.ListAgentsRequest{Service: "billing"}, got)
	require.Equal(t, lines(
		"ID   SERVICE   ADDRESS   WEIGHT   CAPACITY   IN-FLIGHT   CONNECTED",
		"a1   billing   -         1        4          0           yes",
	), r.stdout)
}
