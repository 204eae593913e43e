package main

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func TestExecLogs(t *testing.T) {
	t.Parallel()

	at := timestamppb.New(testNow)
	t.Run("every page", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		var reqs []*tockv1.ListExecutionLogsRequest
		h.execs.ListExecutionLogsFunc = func(req *tockv1.ListExecutionLogsRequest) (*tockv1.ListExecutionLogsResponse, error) {
			reqs = append(reqs, req)
			if req.GetPageToken() == "" {
				return &tockv1.ListExecutionLogsResponse{Logs: []*tockv1.ExecutionLog{
					{Time: at, Level: "INFO", Message: "sleeping for 50 ms", LeaseEpoch: 1},
					{Time: at, Level: "WARN", Message: "two\nlines"},
				}, NextPageToken: "p2"}, nil
			}
			return &tockv1.ListExecutionLogsResponse{Logs: []*tockv1.ExecutionLog{{Message: "last"}}}, nil
		}
		r := h.run(t, "exec", "logs", "e1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Len(t, reqs, 2)
		requireProto(t, &tockv1.ListExecutionLogsRequest{Id: "e1", PageSize: maxPageSize}, reqs[0])
		requireProto(t, &tockv1.ListExecutionLogsRequest{Id: "e1", PageSize: maxPageSize, PageToken: "p2"}, reqs[1])
		require.Equal(t, lines(
			"2026-03-01T12:00:00.000Z INFO  sleeping for 50 ms",
			"2026-03-01T12:00:00.000Z WARN  two lines",
			"- -     last",
		), r.stdout)
	})
	t.Run("limit and json", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.execs.ListExecutionLogsFunc = func(req *tockv1.ListExecutionLogsRequest) (*tockv1.ListExecutionLogsResponse, error) {
			require.Equal(t, int32(1), req.GetPageSize())
			return &tockv1.ListExecutionLogsResponse{Logs: []*tockv1.ExecutionLog{{Time: at, Level: "INFO", Message: "one"}}, NextPageToken: "p2"}, nil
		}
		r := h.run(t, "exec", "logs", "e1", "--limit", "1", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		got := &tockv1.ListExecutionLogsResponse{}
		require.NoError(t, protojson.Unmarshal([]byte(r.stdout), got))
		require.Len(t, got.GetLogs(), 1)
		require.Equal(t, "p2", got.GetNextPageToken())
	})
	t.Run("unknown execution", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.execs.ListExecutionLogsFunc = func(*tockv1.ListExecutionLogsRequest) (*tockv1.ListExecutionLogsResponse, error) {
			return nil, status.Error(codes.NotFound, `execution "e9" not found`)
		}
		r := h.run(t, "exec", "logs", "e9")
		require.NotEqual(t, 0, r.code)
		require.Contains(t, r.stderr, `execution "e9" not found`)
	})
	t.Run("bad limit", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		r := h.run(t, "exec", "logs", "e1", "--limit", "-1")
		require.Equal(t, exitUsage, r.code)
	})
}

func TestExecGetShowsProgress(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.execs.GetExecutionFunc = func(req *tockv1.GetExecutionRequest) (*tockv1.GetExecutionResponse, error) {
		return &tockv1.GetExecutionResponse{Execution: &tockv1.Execution{
			Id: req.GetId(), State: tockv1.ExecutionState_EXECUTION_STATE_RUNNING, TraceId: "4bf92f3577b34da6a3ce929d0e0e4736",
			Progress: &tockv1.ExecutionProgress{Fraction: 0.425, Message: "slept 425 of 1000 ms", UpdateTime: timestamppb.New(testNow)},
		}}, nil
	}
	r := h.run(t, "exec", "get", "e1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Trace ID:      4bf92f3577b34da6a3ce929d0e0e4736\n")
	require.Contains(t, r.stdout, "Progress:      42% slept 425 of 1000 ms (at 2026-03-01T12:00:00Z)\n")
}
