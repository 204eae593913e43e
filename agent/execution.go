package agent

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Reasons given in Release messages.
const (
	ReasonDraining           = "draining"
	ReasonServiceUnavailable = "service unavailable"
	ReasonUnknownHandler     = "unknown handler"
	ReasonAtCapacity         = "at capacity"
	ReasonResultBufferFull   = "result buffer full"
	// ReasonPreviousLease is given when an execution arrives with a newer lease epoch while
	// the agent still runs it under an older one; the older run is cancelled.
	ReasonPreviousLease = "previous lease still running"
)

// Error kinds of results the agent records itself.
const (
	kindServiceUnavailable = "ServiceUnavailable"
	kindDeadlineExceeded   = "DeadlineExceeded"
	kindAgentShutdown      = "AgentShutdown"
)

// execution is one execution the agent runs on the local service.
type execution struct {
	id      string
	epoch   int64
	handler string
	start   time.Time
	gen     uint64      // the Execute stream the Start went out on
	timer   *time.Timer // fires at deadline + grace; nil without a deadline
	span    trace.Span  // the agent's span for the execution
	// startUnreported is set while work assigned ahead of its start time waits for its
	// Started report; a result that comes first sends the report before it.
	startUnreported bool
	// shutdownCancel is set when the drain cancelled the execution: its CANCELLED result is
	// reported as a retryable failure, so the execution runs again elsewhere.
	shutdownCancel bool
}

func (ex *execution) ref() *agentv1.RunningExecution {
	return &agentv1.RunningExecution{ExecutionId: ex.id, LeaseEpoch: ex.epoch}
}

// assign starts or releases each assignment of one Assign message from session s.
func (a *Agent) assign(s *session, assignments []*agentv1.Assignment) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session != s {
		return // the session was replaced; its replica no longer owns this agent
	}
	now := time.Now()
	// Started reports by start time: now, or the later time of work assigned ahead of it.
	started := map[time.Time][]*agentv1.RunningExecution{}
	var startTimes []time.Time
	released := map[string][]*agentv1.RunningExecution{}
	var reasons []string
	release := func(asg *agentv1.Assignment, reason string) {
		a.metrics.released.WithLabelValues(reasonLabel(reason)).Inc()
		if _, ok := released[reason]; !ok {
			reasons = append(reasons, reason)
		}
		released[reason] = append(released[reason], &agentv1.RunningExecution{
			ExecutionId: asg.GetExecutionId(),
			LeaseEpoch:  asg.GetLeaseEpoch(),
		})
	}

	for _, asg := range assignments {
		id, epoch := asg.GetExecutionId(), asg.GetLeaseEpoch()
		if id == "" {
			a.log.Warn("ignoring assignment without an execution id", "handler", asg.GetHandler())
			continue
		}
		if ex, ok := a.running[id]; ok {
			switch {
			case epoch == ex.epoch:
				// Already running under this lease: a repeated assignment changes nothing.
			case epoch < ex.epoch:
				a.logExecution(slog.LevelWarn, ex, "ignoring assignment with a stale lease epoch",
					"assigned_epoch", epoch)
			default:
				a.logExecution(slog.LevelWarn, ex, "execution reassigned while still running; cancelling the older run",
					"assigned_epoch", epoch)
				a.cancelLocked(ex, fmt.Sprintf("superseded by lease epoch %d", epoch))
				release(asg, ReasonPreviousLease)
			}
			continue
		}
		if a.results.has(id, epoch) {
			continue // finished under this lease; its result is buffered and will be reported
		}
		switch {
		case a.draining:
			release(asg, ReasonDraining)
		case a.svc == nil:
			release(asg, ReasonServiceUnavailable)
		case !slices.Contains(a.handlers, asg.GetHandler()):
			release(asg, ReasonUnknownHandler)
		case len(a.running) >= a.cfg.Capacity:
			release(asg, ReasonAtCapacity)
		case a.results.len() >= a.cfg.ResultBufferLimit:
			release(asg, ReasonResultBufferFull)
		default:
			at := a.startLocked(asg, now)
			if _, ok := started[at]; !ok {
				startTimes = append(startTimes, at)
			}
			started[at] = append(started[at], &agentv1.RunningExecution{ExecutionId: id, LeaseEpoch: epoch})
		}
	}

	for _, at := range startTimes {
		if !at.After(now) {
			s.out.push(startedMessage(started[at], at))
			continue
		}
		// Work assigned ahead is reported started when its handler starts.
		refs := started[at]
		time.AfterFunc(at.Sub(now), func() { a.reportStarted(s, refs, at) })
	}
	for _, reason := range reasons {
		s.out.push(releaseMessage(released[reason], reason))
		a.log.Info("released assignments", "reason", reason, "count", len(released[reason]))
	}
}

// reportStarted tells session s that the executions it assigned ahead of their start time
// at have started, those still running under the same lease.
func (a *Agent) reportStarted(s *session, refs []*agentv1.RunningExecution, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session != s {
		return // the next session learns of them from the Hello
	}
	live := refs[:0:0]
	for _, r := range refs {
		if ex, ok := a.running[r.GetExecutionId()]; ok && ex.epoch == r.GetLeaseEpoch() && ex.startUnreported {
			ex.startUnreported = false
			live = append(live, r)
		}
	}
	if len(live) > 0 {
		s.out.push(startedMessage(live, at))
	}
}

// startLocked sends the Start for asg to the local service and tracks the execution. It
// returns when the handler starts: now, or the assignment's later start time, until which
// the service holds the execution (and the agent counts it as running).
func (a *Agent) startLocked(asg *agentv1.Assignment, now time.Time) time.Time {
	span, tc := a.startSpan(asg)
	start := now
	if st := asg.GetStartTime(); st != nil && st.AsTime().After(now) {
		start = st.AsTime()
	}
	ex := &execution{
		id:      asg.GetExecutionId(),
		epoch:   asg.GetLeaseEpoch(),
		handler: asg.GetHandler(),
		start:   start,
		gen:     a.svc.gen,
		span:    span,

		startUnreported: start.After(now),
	}
	a.running[ex.id] = ex
	a.svc.out.push(startRequest(asg, tc))
	a.metrics.started.Inc()
	if asg.GetDeadline() != nil {
		wait := asg.GetDeadline().AsTime().Sub(now) + a.cfg.DeadlineGrace
		id, epoch := ex.id, ex.epoch
		ex.timer = time.AfterFunc(wait, func() { a.expire(id, epoch) })
	}
	a.logExecution(slog.LevelDebug, ex, "execution started", "job", asg.GetJob(), "attempt", asg.GetAttempt())
	return start
}

// cancelLocked asks the local service to cancel ex; its result comes back as usual.
func (a *Agent) cancelLocked(ex *execution, reason string) {
	if a.svc != nil && a.svc.gen == ex.gen {
		a.svc.out.push(cancelRequest(ex.id, reason))
	}
}

// cancelExecution handles a CancelExecution from session s.
func (a *Agent) cancelExecution(s *session, c *agentv1.CancelExecution) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session != s {
		return
	}
	ex, ok := a.running[c.GetExecutionId()]
	if !ok || ex.epoch != c.GetLeaseEpoch() {
		a.log.Debug("ignoring cancellation of an execution not running under that lease",
			"execution_id", c.GetExecutionId(), "lease_epoch", c.GetLeaseEpoch())
		return
	}
	reason := c.GetReason()
	if reason == "" {
		reason = "cancelled by the control plane"
	}
	a.logExecution(slog.LevelInfo, ex, "cancelling execution", "reason", reason)
	a.cancelLocked(ex, reason)
}

// expire records TIMED_OUT for an execution the service did not end by its deadline plus the
// grace period, and tells the service to cancel it.
func (a *Agent) expire(id string, epoch int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ex, ok := a.running[id]
	if !ok || ex.epoch != epoch {
		return
	}
	a.logExecution(slog.LevelWarn, ex, "no result by the deadline; cancelling")
	a.cancelLocked(ex, "deadline exceeded")
	r := &agentv1.Result{
		Outcome: agentv1.Outcome_OUTCOME_TIMED_OUT,
		Error: &agentv1.Error{
			Message: fmt.Sprintf("the service reported no result within %s after the deadline",
				a.cfg.DeadlineGrace),
			Kind:      kindDeadlineExceeded,
			Retryable: true,
		},
	}
	a.reportLocked([]*agentv1.Result{a.completeLocked(ex, r, time.Now())})
}

// ack forgets acknowledged results, whether they were applied or rejected.
func (a *Agent) ack(acks []*agentv1.ResultAck) {
	a.mu.Lock()
	defer a.mu.Unlock()
	removed := false
	for _, k := range acks {
		br, ok := a.results.remove(k.GetExecutionId(), k.GetLeaseEpoch())
		if !ok {
			continue
		}
		removed = true
		if !k.GetApplied() {
			a.log.Info("control plane rejected a result", traceAttrs([]any{"execution_id", k.GetExecutionId(),
				"lease_epoch", k.GetLeaseEpoch(), "reason", k.GetReason()}, br.spanContext)...)
		}
	}
	if removed {
		a.notifyLocked()
	}
}

// onServiceMessage handles one message from the Execute stream of generation gen.
func (a *Agent) onServiceMessage(gen uint64, m *handlerv1.ExecuteResponse) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch k := m.GetKind().(type) {
	case *handlerv1.ExecuteResponse_Result:
		ex, ok := a.running[k.Result.GetExecutionId()]
		if !ok || ex.gen != gen {
			return // already ended by the agent (deadline, broken stream) or never ours
		}
		r := resultFromService(k.Result)
		if ex.shutdownCancel && r.GetOutcome() == agentv1.Outcome_OUTCOME_CANCELLED {
			r = failedResult(kindAgentShutdown, "cancelled because the agent shut down", true)
		}
		a.reportLocked([]*agentv1.Result{a.completeLocked(ex, r, time.Now())})
	case *handlerv1.ExecuteResponse_Progress:
		if ex, ok := a.running[k.Progress.GetExecutionId()]; ok && a.session != nil {
			a.session.out.pushDroppable(progressMessage(ex, k.Progress))
		}
	case *handlerv1.ExecuteResponse_Log:
		if ex, ok := a.running[k.Log.GetExecutionId()]; ok && a.session != nil {
			a.session.out.pushDroppable(logMessage(ex, k.Log))
		}
	case *handlerv1.ExecuteResponse_Heartbeat:
		// The execution is alive; the agent's own heartbeats already keep its lease.
	}
}

// serviceLost fails every execution that ran on the Execute stream of generation gen.
func (a *Agent) serviceLost(gen uint64, cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.svc != nil && a.svc.gen == gen {
		a.svc = nil
		a.metrics.serviceDisconnects.Inc()
		a.registrationChangedLocked()
	}
	msg := fmt.Sprintf("the local service at %s became unavailable: %v", a.cfg.AppAddr, cause)
	now := time.Now()
	var rs []*agentv1.Result
	for _, ex := range sortedExecutions(a.running) {
		if ex.gen == gen {
			rs = append(rs, a.completeLocked(ex, failedResult(kindServiceUnavailable, msg, true), now))
		}
	}
	if len(rs) > 0 {
		a.log.Warn("executions failed: local service unavailable", "count", len(rs))
	}
	a.reportLocked(rs)
}

// completeLocked ends ex with r: it stops tracking ex, stamps r and buffers it until it is
// acknowledged. The caller reports r with reportLocked.
func (a *Agent) completeLocked(ex *execution, r *agentv1.Result, now time.Time) *agentv1.Result {
	delete(a.running, ex.id)
	if ex.timer != nil {
		ex.timer.Stop()
	}
	if ex.startUnreported && a.session != nil {
		// The handler finished before the timer that reports its start ran: keep the order.
		a.session.out.push(startedMessage([]*agentv1.RunningExecution{ex.ref()}, ex.start))
	}
	r.ExecutionId = ex.id
	r.LeaseEpoch = ex.epoch
	r.StartTime = timestamppb.New(ex.start)
	r.FinishTime = timestamppb.New(now)
	endSpan(ex.span, r)
	a.results.add(r, a.session != nil, ex.span.SpanContext())
	elapsed := now.Sub(ex.start)
	a.metrics.executionFinished(ex.handler, r, elapsed.Seconds())
	a.logExecution(slog.LevelDebug, ex, "execution finished", "outcome", outcomeLabel(r.GetOutcome()),
		"duration", elapsed)
	return r
}

// reportLocked sends results to the live session, batched with any results still waiting to
// be sent, and wakes waiters.
func (a *Agent) reportLocked(rs []*agentv1.Result) {
	if len(rs) == 0 {
		return
	}
	if a.session != nil {
		a.session.out.pushOrMerge(resultsMessage(rs), func(last *agentv1.ConnectResponse) bool {
			batch := last.GetResults()
			if batch == nil {
				return false
			}
			batch.Results = append(batch.Results, rs...)
			return true
		})
	}
	a.notifyLocked()
}

// sortedExecutions returns the executions ordered by id, for deterministic reports.
func sortedExecutions(m map[string]*execution) []*execution {
	out := make([]*execution, 0, len(m))
	for _, ex := range m {
		out = append(out, ex)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].id, out[j].id) < 0 })
	return out
}
