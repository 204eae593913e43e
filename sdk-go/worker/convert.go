package worker

import (
	"context"
	"encoding/json"
	"errors"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Content types reported with a handler's output.
const (
	contentTypeJSON   = "application/json"
	contentTypeBinary = "application/octet-stream"
)

// Error kinds the SDK sets when the handler did not choose one.
const (
	kindDeadlineExceeded = "DeadlineExceeded"
	kindCancelled        = "Cancelled"
	kindUnknownHandler   = "UnknownHandler"
	kindPanic            = "Panic"
	kindShuttingDown     = "WorkerShuttingDown"
	kindShutdown         = "WorkerShutdown"
)

// executionFromProto turns a Start message into the execution details handlers see.
func executionFromProto(m *handlerv1.Start) Execution {
	info := Execution{
		ID:          m.GetExecutionId(),
		Job:         m.GetJob(),
		Handler:     m.GetHandler(),
		Attempt:     int(m.GetAttempt()),
		LeaseEpoch:  m.GetLeaseEpoch(),
		ShardIndex:  int(m.GetShardIndex()),
		ShardTotal:  int(m.GetShardTotal()),
		ContentType: m.GetContentType(),
	}
	for _, u := range m.GetUpstream() {
		info.Upstream = append(info.Upstream, Upstream{
			Job: u.GetJob(), ExecutionID: u.GetExecutionId(), Output: u.GetOutput(), ContentType: u.GetContentType(),
		})
	}
	if m.GetNominalTime() != nil {
		info.NominalTime = m.GetNominalTime().AsTime()
	}
	if m.GetDeadline() != nil {
		info.Deadline = m.GetDeadline().AsTime()
	}
	return info
}

// contentTypeOf says how output is reported: JSON when it parses as JSON, bytes otherwise.
func contentTypeOf(out []byte) string {
	if len(out) > 0 && json.Valid(out) {
		return contentTypeJSON
	}
	return contentTypeBinary
}

// outputResult is the result of a handler that returned normally. An output without a
// content type gets one guessed from its bytes.
func outputResult(id string, out Payload) *handlerv1.ExecuteResponse {
	ct := out.ContentType
	if ct == "" {
		ct = contentTypeOf(out.Data)
	}
	return resultMessage(&handlerv1.Result{
		ExecutionId: id,
		Outcome: &handlerv1.Result_Output{Output: &handlerv1.Output{
			Data:        out.Data,
			ContentType: ct,
		}},
	})
}

// errorResult is the result of a handler that returned err; ctx is the handler's context,
// whose state decides whether the error counts as a timeout or a cancellation.
func errorResult(ctx context.Context, id string, err error) *handlerv1.ExecuteResponse {
	var pe *panicError
	if errors.As(err, &pe) {
		return failure(id, &handlerv1.Error{
			Message:   pe.Error(),
			Kind:      kindPanic,
			Retryable: true,
			Cause:     handlerv1.ErrorCause_ERROR_CAUSE_PANIC,
		})
	}
	d := detailsOf(err)
	perr := &handlerv1.Error{Message: d.message, Kind: d.kind, Retryable: d.retryable}
	if d.retryAfter > 0 {
		perr.RetryAfter = durationpb.New(d.retryAfter)
	}
	switch {
	case ctx.Err() == nil:
		// The handler failed on its own.
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		perr.Cause = handlerv1.ErrorCause_ERROR_CAUSE_DEADLINE_EXCEEDED
		perr.Kind = orDefault(perr.Kind, kindDeadlineExceeded)
	case errors.Is(context.Cause(ctx), ErrShutdown):
		// Cancelled because the worker is stopping, not because anyone asked: the execution
		// should run again elsewhere, so it is reported as a retryable failure.
		perr.Kind = orDefault(perr.Kind, kindShutdown)
		perr.Retryable = true
	default:
		perr.Cause = handlerv1.ErrorCause_ERROR_CAUSE_CANCELLED
		perr.Kind = orDefault(perr.Kind, kindCancelled)
		if !d.explicit {
			perr.Retryable = false
		}
	}
	return failure(id, perr)
}

func failure(id string, e *handlerv1.Error) *handlerv1.ExecuteResponse {
	return resultMessage(&handlerv1.Result{
		ExecutionId: id,
		Outcome:     &handlerv1.Result_Error{Error: e},
	})
}

func resultMessage(r *handlerv1.Result) *handlerv1.ExecuteResponse {
	return &handlerv1.ExecuteResponse{Kind: &handlerv1.ExecuteResponse_Result{Result: r}}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
