package workertest

import (
	"maps"
	"time"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"github.com/tockhq/tock/sdk-go/worker"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Start is one execution to run: what the agent puts in its Start message.
type Start struct {
	// ID is the execution's id. Default: "exec-<n>", numbered per Agent from 1.
	ID string
	// Handler is the name of the handler to run.
	Handler string
	// Job is the job's name. Default: empty.
	Job string
	// Attempt is the attempt number. Default: 1.
	Attempt int
	// NominalTime is when the execution was meant to run. Default: the time Run is called.
	NominalTime time.Time
	// LeaseEpoch is the assignment's lease epoch. Default: 1.
	LeaseEpoch int64
	// ShardIndex and ShardTotal place a sharded execution. Default: 0, not sharded.
	ShardIndex, ShardTotal int
	// Deadline is when the worker cancels the handler. Default: none.
	Deadline time.Time
	// Payload is the input.
	Payload []byte
	// ContentType is the media type of Payload. Default: empty, which typed handlers read as
	// JSON.
	ContentType string
	// TraceContext is the W3C trace context ("traceparent", "tracestate") of the execution's
	// trace. Default: none.
	TraceContext map[string]string
	// Upstream are the results of the jobs the execution depends on. Default: none.
	Upstream []worker.Upstream
}

// Outcome is how an execution ended, named as the control plane records it.
type Outcome string

// The outcomes of an execution.
const (
	// Succeeded: the handler returned an output.
	Succeeded Outcome = "SUCCEEDED"
	// Failed: the handler returned an error or panicked, the handler is unknown, or the worker
	// is shutting down.
	Failed Outcome = "FAILED"
	// TimedOut: the deadline passed before the handler returned.
	TimedOut Outcome = "TIMED_OUT"
	// Cancelled: the execution was cancelled.
	Cancelled Outcome = "CANCELLED"
)

// Result is what the worker reported about one execution.
type Result struct {
	// Outcome is how the execution ended.
	Outcome Outcome
	// Output and ContentType are the handler's output, when it succeeded.
	Output      []byte
	ContentType string
	// Err describes the failure when the execution did not succeed: its Message, Kind,
	// Retryable and RetryAfter are what the control plane receives. Nil on success.
	Err *worker.Error
	// Progress lists the progress reports, in order.
	Progress []Progress
	// Logs lists the log lines, in order.
	Logs []Log
	// Heartbeats counts the heartbeats.
	Heartbeats int
}

// Progress is one progress report.
type Progress struct {
	// Fraction is the fraction done, from 0 to 1.
	Fraction float64
	// Message is the status message.
	Message string
}

// Log is one log line.
type Log struct {
	// Time is when the handler wrote it.
	Time time.Time
	// Level is its severity, such as "INFO".
	Level string
	// Message is its text.
	Message string
}

func startRequest(s Start) *handlerv1.ExecuteRequest {
	if s.Attempt == 0 {
		s.Attempt = 1
	}
	if s.LeaseEpoch == 0 {
		s.LeaseEpoch = 1
	}
	if s.NominalTime.IsZero() {
		s.NominalTime = time.Now()
	}
	m := &handlerv1.Start{
		ExecutionId:  s.ID,
		Handler:      s.Handler,
		Job:          s.Job,
		Attempt:      int32(s.Attempt),
		NominalTime:  timestamppb.New(s.NominalTime),
		LeaseEpoch:   s.LeaseEpoch,
		Payload:      s.Payload,
		ContentType:  s.ContentType,
		ShardIndex:   int32(s.ShardIndex),
		ShardTotal:   int32(s.ShardTotal),
		TraceContext: maps.Clone(s.TraceContext),
	}
	for _, u := range s.Upstream {
		m.Upstream = append(m.Upstream, &handlerv1.Upstream{
			Job: u.Job, ExecutionId: u.ExecutionID, Output: u.Output, ContentType: u.ContentType,
		})
	}
	if !s.Deadline.IsZero() {
		m.Deadline = timestamppb.New(s.Deadline)
	}
	return &handlerv1.ExecuteRequest{Kind: &handlerv1.ExecuteRequest_Start{Start: m}}
}

func cancelRequest(id, reason string) *handlerv1.ExecuteRequest {
	return &handlerv1.ExecuteRequest{Kind: &handlerv1.ExecuteRequest_Cancel{
		Cancel: &handlerv1.Cancel{ExecutionId: id, Reason: reason},
	}}
}

func logFromProto(l *handlerv1.Log) Log {
	return Log{Time: l.GetTime().AsTime(), Level: l.GetLevel(), Message: l.GetMessage()}
}

// setOutcome fills r from the worker's Result, as the agent maps it for the control plane.
func setOutcome(r *Result, m *handlerv1.Result) {
	if out := m.GetOutput(); out != nil {
		r.Outcome = Succeeded
		r.Output = out.GetData()
		r.ContentType = out.GetContentType()
		return
	}
	e := m.GetError()
	r.Err = &worker.Error{Kind: e.GetKind(), Message: e.GetMessage(), Retryable: e.GetRetryable()}
	if e.GetRetryAfter() != nil {
		r.Err.RetryAfter = e.GetRetryAfter().AsDuration()
	}
	switch e.GetCause() {
	case handlerv1.ErrorCause_ERROR_CAUSE_DEADLINE_EXCEEDED:
		r.Outcome = TimedOut
	case handlerv1.ErrorCause_ERROR_CAUSE_CANCELLED:
		r.Outcome = Cancelled
	default:
		r.Outcome = Failed
	}
}
