package dispatch

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tockhq/tock/controlplane/store"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

// TraceContextKey is the key of the W3C traceparent in an assignment's trace context.
const TraceContextKey = "traceparent"

func assignmentToProto(e *store.Execution, defaultTimeout time.Duration) *agentv1.Assignment {
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	a := &agentv1.Assignment{
		ExecutionId: e.ID,
		Job:         e.Job,
		Handler:     e.Handler,
		Attempt:     int32(e.Attempt),
		LeaseEpoch:  e.LeaseEpoch,
		NominalTime: timestamppb.New(e.NominalTime),
		Deadline:    timestamppb.New(startOf(e).Add(timeout)),
		Payload:     e.Payload,
		ContentType: e.ContentType,
		ShardIndex:  int32(e.Route.ShardIndex),
		ShardTotal:  int32(e.Route.ShardTotal),
	}
	if e.NotBefore.After(e.AssignedAt) {
		a.StartTime = timestamppb.New(e.NotBefore)
	}
	if e.TraceContext != "" {
		a.TraceContext = map[string]string{TraceContextKey: e.TraceContext}
	}
	a.Upstream = upstreamToProto(e.Upstream)
	return a
}

// startOf returns when an assigned execution may start: at its assignment, or at its
// not-before time when it was assigned ahead of it.
func startOf(e *store.Execution) time.Time {
	if e.NotBefore.After(e.AssignedAt) {
		return e.NotBefore
	}
	return e.AssignedAt
}

func refsFromProto(rs []*agentv1.RunningExecution) []store.ExecRef {
	refs := make([]store.ExecRef, 0, len(rs))
	for _, r := range rs {
		refs = append(refs, store.ExecRef{ID: r.GetExecutionId(), Epoch: r.GetLeaseEpoch()})
	}
	return refs
}

func completionFromProto(r *agentv1.Result) store.Completion {
	c := store.Completion{
		ExecRef:           store.ExecRef{ID: r.GetExecutionId(), Epoch: r.GetLeaseEpoch()},
		Result:            r.GetOutput(),
		ResultContentType: r.GetContentType(),
	}
	if r.GetStartTime() != nil {
		c.StartedAt = r.GetStartTime().AsTime()
	}
	if r.GetFinishTime() != nil {
		c.FinishedAt = r.GetFinishTime().AsTime()
	}
	switch r.GetOutcome() {
	case agentv1.Outcome_OUTCOME_SUCCEEDED:
		c.State = store.ExecSucceeded
	case agentv1.Outcome_OUTCOME_TIMED_OUT:
		c.State = store.ExecTimedOut
	case agentv1.Outcome_OUTCOME_CANCELLED:
		c.State = store.ExecCancelled
	default:
		c.State = store.ExecFailed
	}
	if e := r.GetError(); e != nil {
		c.Error = &store.ExecError{
			Message:    e.GetMessage(),
			Kind:       e.GetKind(),
			Retryable:  e.GetRetryable(),
			RetryAfter: e.GetRetryAfter().AsDuration(),
		}
	} else if c.State != store.ExecSucceeded {
		c.Error = &store.ExecError{Message: "execution " + string(c.State), Retryable: c.State == store.ExecTimedOut}
	}
	return c
}
