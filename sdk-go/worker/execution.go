package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Execution describes the execution a handler is running.
type Execution struct {
	// ID is the execution's id (a UUIDv7).
	ID string
	// Job is the name of the job the execution belongs to.
	Job string
	// Handler is the name of the handler being run.
	Handler string
	// Attempt is the attempt number, starting at 1.
	Attempt int
	// NominalTime is when the execution was meant to run: the schedule's fire time, or the time
	// of a manual trigger.
	NominalTime time.Time
	// LeaseEpoch grows every time the execution is assigned. Use it to fence side effects: a
	// write tagged with an older epoch than one already applied comes from a stale attempt.
	LeaseEpoch int64
	// ShardIndex is the shard this execution handles when the job is sharded, from 0.
	ShardIndex int
	// ShardTotal is the number of shards; 0 or 1 means the job is not sharded.
	ShardTotal int
	// Deadline is when the handler's context is cancelled; zero when there is none.
	Deadline time.Time
	// ContentType is the media type of the payload, such as "application/json".
	ContentType string
}

// execKey is the context key of the running execution.
type execKey struct{}

// execution is one running handler invocation.
type execution struct {
	info     Execution
	out      *sendQueue              // the stream's outgoing messages
	cancel   context.CancelCauseFunc // cancels the handler's context with a cause
	finished atomic.Bool             // set once the result is built; later progress is dropped
}

// ExecutionFromContext returns the execution a handler's context belongs to. The second result
// is false outside a handler.
func ExecutionFromContext(ctx context.Context) (Execution, bool) {
	ex, ok := ctx.Value(execKey{}).(*execution)
	if !ok {
		return Execution{}, false
	}
	return ex.info, true
}

func executionOf(ctx context.Context) *execution {
	ex, ok := ctx.Value(execKey{}).(*execution)
	if !ok || ex.finished.Load() {
		return nil
	}
	return ex
}

// Progress reports how far the current execution has come: fraction from 0 to 1 (clamped) and
// a short status message. It never blocks; outside a handler, or after the handler returned,
// it does nothing. Progress messages may be dropped when the agent cannot keep up.
func Progress(ctx context.Context, fraction float64, msg string) {
	ex := executionOf(ctx)
	if ex == nil {
		return
	}
	switch {
	case fraction < 0 || math.IsNaN(fraction):
		fraction = 0
	case fraction > 1:
		fraction = 1
	}
	ex.out.pushDroppable(&handlerv1.ExecuteResponse{Kind: &handlerv1.ExecuteResponse_Progress{
		Progress: &handlerv1.Progress{ExecutionId: ex.info.ID, Fraction: fraction, Message: msg},
	}})
}

// Logf sends a log line for the current execution to the agent, which forwards it to the
// control plane. It never blocks; outside a handler, or after the handler returned, it does
// nothing. Log lines may be dropped when the agent cannot keep up.
func Logf(ctx context.Context, level slog.Level, format string, args ...any) {
	ex := executionOf(ctx)
	if ex == nil {
		return
	}
	ex.out.pushDroppable(&handlerv1.ExecuteResponse{Kind: &handlerv1.ExecuteResponse_Log{
		Log: &handlerv1.Log{
			ExecutionId: ex.info.ID,
			Time:        timestamppb.Now(),
			Level:       level.String(),
			Message:     fmt.Sprintf(format, args...),
		},
	}})
}
