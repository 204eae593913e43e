package worker

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
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
	// Upstream holds, for an execution started because the jobs it depends on succeeded,
	// their results.
	Upstream []Upstream
}

// Upstream is the result of a job an execution depends on.
type Upstream struct {
	// Job is the upstream job's name.
	Job string
	// ExecutionID is the upstream execution's id.
	ExecutionID string
	// Output is what its handler returned, ContentType the output's media type.
	Output      []byte
	ContentType string
}

// execKey is the context key of the running execution.
type execKey struct{}

// execution is one running handler invocation.
type execution struct {
	info     Execution
	out      *sendQueue              // the stream's outgoing messages
	cancel   context.CancelCauseFunc // cancels the handler's context with a cause
	log      *slog.Logger            // Options.Logger, for Logger's local copy of each line
	finished atomic.Bool             // set once the result is built; later progress is dropped
	lastBeat atomic.Int64            // when the last heartbeat was queued, in Unix nanoseconds

	loggerOnce sync.Once
	logger     *slog.Logger // built by Logger on first use
}

// heartbeatInterval is the shortest time between two heartbeats of one execution; Heartbeat
// calls in between are dropped.
const heartbeatInterval = time.Second

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

// Heartbeat tells the agent that the current execution's handler is alive. Call it from long
// handlers, between steps or from a ticker. It never blocks; at most one heartbeat per second
// is sent for an execution, and calls in between are dropped, so it is cheap to call often.
// Outside a handler, or after the handler returned, it does nothing.
//
// The execution's lease does not depend on it: the agent keeps the lease of every execution
// it runs alive by its own heartbeats to the control plane, for as long as the execution
// runs. Handler heartbeats are a liveness signal from inside the handler, for a stuck handler
// to be told apart from a slow one.
func Heartbeat(ctx context.Context) {
	ex := executionOf(ctx)
	if ex == nil {
		return
	}
	now := time.Now().UnixNano()
	last := ex.lastBeat.Load()
	if last != 0 && now-last < int64(heartbeatInterval) {
		return
	}
	if !ex.lastBeat.CompareAndSwap(last, now) {
		return // another goroutine of this handler sent it
	}
	ex.out.pushDroppable(&handlerv1.ExecuteResponse{Kind: &handlerv1.ExecuteResponse_Heartbeat{
		Heartbeat: &handlerv1.Heartbeat{ExecutionId: ex.info.ID},
	}})
}
