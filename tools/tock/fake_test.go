package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// fakeJobs is a JobServiceClient whose methods call the matching Func field; a method whose
// field is nil fails with Unimplemented.
type fakeJobs struct {
	CreateJobFunc   func(*tockv1.CreateJobRequest) (*tockv1.CreateJobResponse, error)
	GetJobFunc      func(*tockv1.GetJobRequest) (*tockv1.GetJobResponse, error)
	ListJobsFunc    func(*tockv1.ListJobsRequest) (*tockv1.ListJobsResponse, error)
	UpdateJobFunc   func(*tockv1.UpdateJobRequest) (*tockv1.UpdateJobResponse, error)
	DeleteJobFunc   func(*tockv1.DeleteJobRequest) (*tockv1.DeleteJobResponse, error)
	PauseJobFunc    func(*tockv1.PauseJobRequest) (*tockv1.PauseJobResponse, error)
	ResumeJobFunc   func(*tockv1.ResumeJobRequest) (*tockv1.ResumeJobResponse, error)
	TriggerJobFunc  func(*tockv1.TriggerJobRequest) (*tockv1.TriggerJobResponse, error)
	ListFiresFunc   func(*tockv1.ListFiresRequest) (*tockv1.ListFiresResponse, error)
	PreviewJobFunc  func(*tockv1.PreviewJobRequest) (*tockv1.PreviewJobResponse, error)
	BackfillJobFunc func(*tockv1.BackfillJobRequest) (*tockv1.BackfillJobResponse, error)
}

var errUnimplemented = status.Error(codes.Unimplemented, "not faked")

func call[Req, Resp any](fn func(Req) (Resp, error), req Req) (Resp, error) {
	if fn == nil {
		var zero Resp
		return zero, errUnimplemented
	}
	return fn(req)
}

func (f *fakeJobs) CreateJob(_ context.Context, in *tockv1.CreateJobRequest, _ ...grpc.CallOption) (*tockv1.CreateJobResponse, error) {
	return call(f.CreateJobFunc, in)
}

func (f *fakeJobs) GetJob(_ context.Context, in *tockv1.GetJobRequest, _ ...grpc.CallOption) (*tockv1.GetJobResponse, error) {
	return call(f.GetJobFunc, in)
}

func (f *fakeJobs) ListJobs(_ context.Context, in *tockv1.ListJobsRequest, _ ...grpc.CallOption) (*tockv1.ListJobsResponse, error) {
	return call(f.ListJobsFunc, in)
}

func (f *fakeJobs) UpdateJob(_ context.Context, in *tockv1.UpdateJobRequest, _ ...grpc.CallOption) (*tockv1.UpdateJobResponse, error) {
	return call(f.UpdateJobFunc, in)
}

func (f *fakeJobs) DeleteJob(_ context.Context, in *tockv1.DeleteJobRequest, _ ...grpc.CallOption) (*tockv1.DeleteJobResponse, error) {
	return call(f.DeleteJobFunc, in)
}

func (f *fakeJobs) PauseJob(_ context.Context, in *tockv1.PauseJobRequest, _ ...grpc.CallOption) (*tockv1.PauseJobResponse, error) {
	return call(f.PauseJobFunc, in)
}

func (f *fakeJobs) ResumeJob(_ context.Context, in *tockv1.ResumeJobRequest, _ ...grpc.CallOption) (*tockv1.ResumeJobResponse, error) {
	return call(f.ResumeJobFunc, in)
}

func (f *fakeJobs) TriggerJob(_ context.Context, in *tockv1.TriggerJobRequest, _ ...grpc.CallOption) (*tockv1.TriggerJobResponse, error) {
	return call(f.TriggerJobFunc, in)
}

func (f *fakeJobs) ListFires(_ context.Context, in *tockv1.ListFiresRequest, _ ...grpc.CallOption) (*tockv1.ListFiresResponse, error) {
	return call(f.ListFiresFunc, in)
}

func (f *fakeJobs) PreviewJob(_ context.Context, in *tockv1.PreviewJobRequest, _ ...grpc.CallOption) (*tockv1.PreviewJobResponse, error) {
	return call(f.PreviewJobFunc, in)
}

func (f *fakeJobs) BackfillJob(_ context.Context, in *tockv1.BackfillJobRequest, _ ...grpc.CallOption) (*tockv1.BackfillJobResponse, error) {
	return call(f.BackfillJobFunc, in)
}

// fakeExecutions is an ExecutionServiceClient built like fakeJobs.
type fakeExecutions struct {
	GetExecutionFunc      func(*tockv1.GetExecutionRequest) (*tockv1.GetExecutionResponse, error)
	ListExecutionsFunc    func(*tockv1.ListExecutionsRequest) (*tockv1.ListExecutionsResponse, error)
	CancelExecutionFunc   func(*tockv1.CancelExecutionRequest) (*tockv1.CancelExecutionResponse, error)
	ListExecutionLogsFunc func(*tockv1.ListExecutionLogsRequest) (*tockv1.ListExecutionLogsResponse, error)
}

func (f *fakeExecutions) GetExecution(_ context.Context, in *tockv1.GetExecutionRequest, _ ...grpc.CallOption) (*tockv1.GetExecutionResponse, error) {
	return call(f.GetExecutionFunc, in)
}

func (f *fakeExecutions) ListExecutions(_ context.Context, in *tockv1.ListExecutionsRequest, _ ...grpc.CallOption) (*tockv1.ListExecutionsResponse, error) {
	return call(f.ListExecutionsFunc, in)
}

func (f *fakeExecutions) CancelExecution(_ context.Context, in *tockv1.CancelExecutionRequest, _ ...grpc.CallOption) (*tockv1.CancelExecutionResponse, error) {
	return call(f.CancelExecutionFunc, in)
}

func (f *fakeExecutions) ListExecutionLogs(_ context.Context, in *tockv1.ListExecutionLogsRequest, _ ...grpc.CallOption) (*tockv1.ListExecutionLogsResponse, error) {
	return call(f.ListExecutionLogsFunc, in)
}

// fakeAgents is an AgentServiceClient built like fakeJobs.
type fakeAgents struct {
	ListAgentsFunc func(*tockv1.ListAgentsRequest) (*tockv1.ListAgentsResponse, error)
}

func (f *fakeAgents) ListAgents(_ context.Context, in *tockv1.ListAgentsRequest, _ ...grpc.CallOption) (*tockv1.ListAgentsResponse, error) {
	return call(f.ListAgentsFunc, in)
}

// testNow is the clock of test runs.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness runs tock command lines against fake clients and captures what they print.
type harness struct {
	jobs   *fakeJobs
	execs  *fakeExecutions
	agents *fakeAgents
	env    map[string]string
	stdin  string
	// conn is the configuration of the last connection made.
	conn *ConnConfig
}

func setup(t *testing.T) *harness {
	t.Helper()
	return &harness{
		jobs:   &fakeJobs{},
		execs:  &fakeExecutions{},
		agents: &fakeAgents{},
		env:    map[string]string{},
	}
}

// result is the outcome of one run.
type result struct {
	code   int
	stdout string
	stderr string
}

func (h *harness) run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := &Main{
		Stdin:  strings.NewReader(h.stdin),
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return h.env[k] },
		Now:    func() time.Time { return testNow },
		Connect: func(cfg ConnConfig) (*Client, error) {
			h.conn = &cfg
			return &Client{Jobs: h.jobs, Executions: h.execs, Agents: h.agents}, nil
		},
	}
	code := m.Run(t.Context(), args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}
