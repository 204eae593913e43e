package agent

import (
	"sort"
	"time"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// startRequest turns an assignment into the Start message for the local service: every field
// the service needs is copied, upstream results included, except the trace context, which is tc (the agent
// span's; see Agent.startSpan).
func startRequest(a *agentv1.Assignment, tc map[string]string) *handlerv1.ExecuteRequest {
	return &handlerv1.ExecuteRequest{Kind: &handlerv1.ExecuteRequest_Start{Start: &handlerv1.Start{
		ExecutionId:  a.GetExecutionId(),
		Handler:      a.GetHandler(),
		Job:          a.GetJob(),
		Attempt:      a.GetAttempt(),
		NominalTime:  a.GetNominalTime(),
		LeaseEpoch:   a.GetLeaseEpoch(),
		Deadline:     a.GetDeadline(),
		Payload:      a.GetPayload(),
		ContentType:  a.GetContentType(),
		ShardIndex:   a.GetShardIndex(),
		ShardTotal:   a.GetShardTotal(),
		TraceContext: tc,
		Upstream:     upstreamToService(a.GetUpstream()),
		StartTime:    a.GetStartTime(),
	}}}
}

// upstreamToService copies the results of the jobs an execution depends on.
func upstreamToService(in []*agentv1.Upstream) []*handlerv1.Upstream {
	if len(in) == 0 {
		return nil
	}
	out := make([]*handlerv1.Upstream, 0, len(in))
	for _, u := range in {
		out = append(out, &handlerv1.Upstream{
			Job: u.GetJob(), ExecutionId: u.GetExecutionId(), Output: u.GetOutput(), ContentType: u.GetContentType(),
		})
	}
	return out
}

func cancelRequest(executionID, reason string) *handlerv1.ExecuteRequest {
	return &handlerv1.ExecuteRequest{Kind: &handlerv1.ExecuteRequest_Cancel{Cancel: &handlerv1.Cancel{
		ExecutionId: executionID,
		Reason:      reason,
	}}}
}

// resultFromService maps the service's result to the control plane's: output is SUCCEEDED;
// an error is TIMED_OUT when the deadline passed, CANCELLED when cancelled, FAILED otherwise.
// The execution id, lease epoch and times are filled in by the caller.
func resultFromService(r *handlerv1.Result) *agentv1.Result {
	switch o := r.GetOutcome().(type) {
	case *handlerv1.Result_Output:
		return &agentv1.Result{
			Outcome:     agentv1.Outcome_OUTCOME_SUCCEEDED,
			Output:      o.Output.GetData(),
			ContentType: o.Output.GetContentType(),
		}
	case *handlerv1.Result_Error:
		e := o.Error
		outcome := agentv1.Outcome_OUTCOME_FAILED
		switch e.GetCause() {
		case handlerv1.ErrorCause_ERROR_CAUSE_DEADLINE_EXCEEDED:
			outcome = agentv1.Outcome_OUTCOME_TIMED_OUT
		case handlerv1.ErrorCause_ERROR_CAUSE_CANCELLED:
			outcome = agentv1.Outcome_OUTCOME_CANCELLED
		}
		return &agentv1.Result{
			Outcome: outcome,
			Error: &agentv1.Error{
				Message:    e.GetMessage(),
				Kind:       e.GetKind(),
				Retryable:  e.GetRetryable(),
				RetryAfter: e.GetRetryAfter(),
			},
		}
	default:
		return failedResult("InvalidResult", "the service returned a result with neither output nor error", true)
	}
}

func failedResult(kind, message string, retryable bool) *agentv1.Result {
	return &agentv1.Result{
		Outcome: agentv1.Outcome_OUTCOME_FAILED,
		Error:   &agentv1.Error{Message: message, Kind: kind, Retryable: retryable},
	}
}

// runningList returns the running executions sorted by id.
func runningList(running map[string]*execution) []*agentv1.RunningExecution {
	out := make([]*agentv1.RunningExecution, 0, len(running))
	for _, ex := range running {
		out = append(out, ex.ref())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetExecutionId() < out[j].GetExecutionId() })
	return out
}

func helloMessage(h *agentv1.Hello) *agentv1.ConnectResponse {
	return &agentv1.ConnectResponse{Kind: &agentv1.ConnectResponse_Hello{Hello: h}}
}

func heartbeatMessage(h *agentv1.Heartbeat) *agentv1.ConnectResponse {
	return &agentv1.ConnectResponse{Kind: &agentv1.ConnectResponse_Heartbeat{Heartbeat: h}}
}

func startedMessage(execs []*agentv1.RunningExecution, at time.Time) *agentv1.ConnectResponse {
	return &agentv1.ConnectResponse{Kind: &agentv1.ConnectResponse_Started{Started: &agentv1.Started{
		Executions: execs,
		Time:       timestamppb.New(at),
	}}}
}

func releaseMessage(execs []*agentv1.RunningExecution, reason string) *agentv1.ConnectResponse {
	return &agentv1.ConnectResponse{Kind: &agentv1.ConnectResponse_Release{Release: &agentv1.Release{
		Executions: execs,
		Reason:     reason,
	}}}
}

func resultsMessage(rs []*agentv1.Result) *agentv1.ConnectResponse {
	return &agentv1.ConnectResponse{Kind: &agentv1.ConnectResponse_Results{Results: &agentv1.Results{
		Results: rs,
	}}}
}

func progressMessage(ex *execution, p *handlerv1.Progress) *agentv1.ConnectResponse {
	return &agentv1.ConnectResponse{Kind: &agentv1.ConnectResponse_Progress{Progress: &agentv1.Progress{
		ExecutionId: ex.id,
		LeaseEpoch:  ex.epoch,
		Fraction:    p.GetFraction(),
		Message:     p.GetMessage(),
	}}}
}

func logMessage(ex *execution, l *handlerv1.Log) *agentv1.ConnectResponse {
	t := l.GetTime()
	if t == nil {
		t = timestamppb.Now()
	}
	return &agentv1.ConnectResponse{Kind: &agentv1.ConnectResponse_Log{Log: &agentv1.Log{
		ExecutionId: ex.id,
		LeaseEpoch:  ex.epoch,
		Time:        t,
		Level:       l.GetLevel(),
		Message:     l.GetMessage(),
	}}}
}
