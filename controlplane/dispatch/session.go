package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tockhq/tock/controlplane/discovery"
	"github.com/tockhq/tock/controlplane/retry"
	"github.com/tockhq/tock/controlplane/store"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

// session is the live connection between this replica and one agent. Its run goroutine
// dials and re-dials; while connected, a reader applies the agent's reports and a writer
// sends what the dispatcher queues.
type session struct {
	d     *Dispatcher
	agent discovery.Agent

	sendCh chan *agentv1.ConnectRequest

	mu sync.Mutex // protects the fields below
	// up is true between the agent's Hello and the end of the stream.
	up       bool
	hello    *agentv1.Hello
	draining bool
	healthy  bool
	handlers map[string]struct{}
	// outstanding holds the executions sent to the agent and not yet finished or released,
	// with the time they were sent.
	outstanding map[string]time.Time
	// cancelSent remembers when a cancellation was last sent, so it is not repeated often.
	cancelSent map[string]time.Time
	// assigned counts assignments, to break balancing ties.
	assigned uint64
	// holdUntil keeps work away from an agent that just handed some back, until its next
	// heartbeat or this time, so that a refusing agent is not offered the same work in a loop.
	holdUntil time.Time
	// lastHeard is when the agent last said hello or heartbeated: an agent silent for
	// several heartbeat intervals (hung, paused, cut off) is offered no work (heard.go).
	lastHeard time.Time

	// reports buffers the agent's progress and log reports of the current stream; set and
	// used by the run goroutine only.
	reports *reportBatcher

	cancel context.CancelFunc
	done   chan struct{}
}

// errNotOwner ends a session attempt for an agent this replica no longer owns.
var errNotOwner = errors.New("agent owned by another replica")

func newSession(d *Dispatcher, a discovery.Agent) *session {
	return &session{
		d:           d,
		agent:       a,
		sendCh:      make(chan *agentv1.ConnectRequest, 256),
		outstanding: make(map[string]time.Time),
		cancelSent:  make(map[string]time.Time),
		done:        make(chan struct{}),
	}
}

func (s *session) start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
}

func (s *session) stop() {
	s.cancel()
	<-s.done
}

// snapshot returns the agent as the balancer sees it, and false when it takes no work now.
func (s *session) snapshot() (slot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.up || s.draining || !s.healthy || time.Now().Before(s.holdUntil) || s.silentLocked(time.Now()) {
		return slot{}, false
	}
	capacity := int(s.hello.GetCapacity())
	free := capacity - len(s.outstanding)
	return slot{
		id:       s.agent.ID,
		service:  s.hello.GetService(),
		labels:   s.hello.GetLabels(),
		handlers: s.handlers,
		weight:   max(1, int(s.hello.GetWeight())),
		free:     free,
		inFlight: len(s.outstanding),
		assigned: s.assigned,
	}, free > 0
}

// inFlight returns how many executions the agent holds.
func (s *session) inFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.outstanding)
}

// assign queues assignments on the stream. It reports false when the session is down, in
// which case the executions' leases lapse and they are retried.
func (s *session) assign(execs []store.Execution) bool {
	msg := &agentv1.Assign{Assignments: make([]*agentv1.Assignment, 0, len(execs))}
	now := time.Now()
	s.mu.Lock()
	if !s.up {
		s.mu.Unlock()
		return false
	}
	facts := s.assignFactsLocked(len(execs))
	for i := range execs {
		e := &execs[i]
		facts[i].inFlight = len(s.outstanding)
		s.outstanding[e.ID] = now
		s.observeLoadLocked()
		s.assigned++
		msg.Assignments = append(msg.Assignments, assignmentToProto(e, s.d.cfg.DefaultTimeout))
	}
	s.mu.Unlock()
	spans := s.d.obs.traceAssignments(execs, facts, msg.Assignments)
	sent := s.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Assign{Assign: msg}})
	endDispatch(spans, sent)
	return sent
}

// cancelExec asks the agent to cancel an execution, at most once per CancelResend.
func (s *session) cancelExec(ref store.ExecRef, reason string) {
	s.mu.Lock()
	last, ok := s.cancelSent[ref.ID]
	if ok && time.Since(last) < s.d.cfg.CancelResend {
		s.mu.Unlock()
		return
	}
	s.cancelSent[ref.ID] = time.Now()
	s.mu.Unlock()
	s.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Cancel{Cancel: &agentv1.CancelExecution{
		ExecutionId: ref.ID, LeaseEpoch: ref.Epoch, Reason: reason,
	}}})
}

func (s *session) send(msg *agentv1.ConnectRequest) bool {
	select {
	case s.sendCh <- msg:
		return true
	case <-s.done:
		return false
	}
}

func (s *session) run(ctx context.Context) {
	backoff := s.d.cfg.ReconnectMin
	for ctx.Err() == nil {
		start := time.Now()
		var err error
		if s.d.members.owns(s.agent.ID) {
			err = s.connect(ctx)
			s.markDown()
		} else {
			// Ownership moved since the session started; the discovery loop stops it. Never
			// open a session (which would replace the owner's) meanwhile.
			err = errNotOwner
		}
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, errNotOwner):
		case status.Code(err) == codes.Aborted:
			// Another replica opened a newer session: ownership is moving. Look at the
			// replica set now rather than fight over the agent.
			s.d.cfg.Logger.Info("agent session replaced by another replica", "agent", s.agent.ID, "err", err)
			s.d.resyncNow()
		default:
			s.d.cfg.Logger.Warn("agent session ended", "agent", s.agent.ID, "address", s.agent.Address, "err", err)
		}
		if time.Since(start) > 10*time.Second {
			backoff = s.d.cfg.ReconnectMin
		}
		// Full jitter: wait a random time up to the current backoff.
		wait := time.Duration(rand.Int64N(int64(backoff)) + 1)
		backoff = min(2*backoff, s.d.cfg.ReconnectMax)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *session) markDown() {
	s.mu.Lock()
	wasUp := s.up
	s.up = false
	s.mu.Unlock()
	if wasUp {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Only if the record still names this replica: a replica that took the agent over
		// may have recorded itself already.
		if err := s.d.store.EndAgentSession(ctx, s.agent.ID, s.d.cfg.ReplicaID); err != nil {
			s.d.cfg.Logger.Warn("clear agent session", "agent", s.agent.ID, "err", err)
		}
		s.d.Wake()
	}
}

// connect runs one stream to the agent until it ends.
func (s *session) connect(ctx context.Context) error {
	conn, err := grpc.NewClient(s.agent.Address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithStatsHandler(s.d.obs.grpcClientHandler()),
	)
	if err != nil {
		return fmt.Errorf("dial agent %s: %w", s.agent.Address, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := agentv1.NewAgentServiceClient(conn).Connect(ctx)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	err = stream.Send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Open{Open: &agentv1.Open{
		ReplicaId: s.d.cfg.ReplicaID,
		// The database clock orders sessions across replicas whose own clocks disagree: a
		// replica that takes the agent over opens a session with a higher epoch than the
		// previous owner's, so the agent replaces the older session.
		SessionEpoch:      s.d.clock.Now().UnixNano(),
		HeartbeatInterval: durationpb.New(s.d.cfg.HeartbeatInterval),
	}}})
	if err != nil {
		return fmt.Errorf("send open: %w", err)
	}
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("wait for hello: %w", err)
	}
	hello := first.GetHello()
	if hello == nil {
		return errors.New("agent did not start with hello")
	}
	s.onHello(ctx, hello)
	s.reports = newReportBatcher(s.d.store, s.d.obs.reports, s.d.cfg.Logger, s.agent.ID)
	s.reports.start(ctx)
	defer s.reports.stop() // writes what is buffered, under a context of its own

	writeErr := make(chan error, 1)
	go func() { writeErr <- s.write(ctx, stream) }()
	readErr := s.read(ctx, stream)
	cancel()
	if werr := <-writeErr; werr != nil && errors.Is(readErr, io.EOF) {
		return werr
	}
	return readErr
}

func (s *session) onHello(ctx context.Context, h *agentv1.Hello) {
	now := time.Now()
	s.mu.Lock()
	s.up = true
	s.hello = h
	s.draining = h.GetDraining()
	s.healthy = true
	s.lastHeard = now
	s.handlers = handlerSet(h.GetHandlers())
	s.outstanding = make(map[string]time.Time, len(h.GetRunning()))
	for _, r := range h.GetRunning() {
		s.outstanding[r.GetExecutionId()] = now
	}
	s.mu.Unlock()
	if err := s.d.store.SetAgentSession(ctx, s.agent.ID, s.d.cfg.ReplicaID); err != nil {
		s.d.cfg.Logger.Warn("record agent session", "agent", s.agent.ID, "err", err)
	}
	// The agent may come from a replica that died: its executions went without heartbeats
	// since. Extend their leases now rather than at the first heartbeat.
	if running := h.GetRunning(); len(running) > 0 {
		if _, err := s.d.store.ExtendLeases(ctx, s.agent.ID, refsFromProto(running), s.d.cfg.Lease); err != nil {
			s.d.cfg.Logger.Warn("extend leases", "agent", s.agent.ID, "err", err)
		}
	}
	s.d.cfg.Logger.Info("agent connected", "agent", s.agent.ID, "service", h.GetService(),
		"capacity", h.GetCapacity(), "weight", h.GetWeight(), "handlers", len(h.GetHandlers()),
		"running", len(h.GetRunning()))
	s.d.Wake()
}

func (s *session) write(ctx context.Context, stream agentv1.AgentService_ConnectClient) error {
	defer func() { _ = stream.CloseSend() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-s.sendCh:
			if err := stream.Send(msg); err != nil {
				return fmt.Errorf("send to agent: %w", err)
			}
		}
	}
}

func (s *session) read(ctx context.Context, stream agentv1.AgentService_ConnectClient) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receive from agent: %w", err)
		}
		switch k := msg.GetKind().(type) {
		case *agentv1.ConnectResponse_Heartbeat:
			s.onHeartbeat(ctx, k.Heartbeat)
		case *agentv1.ConnectResponse_Started:
			refs := refsFromProto(k.Started.GetExecutions())
			startedAt := k.Started.GetTime().AsTime()
			if err := s.d.store.MarkStarted(ctx, refs, startedAt); err != nil {
				s.d.cfg.Logger.Warn("mark started", "agent", s.agent.ID, "err", err)
			}
		case *agentv1.ConnectResponse_Results:
			if err := s.onResults(ctx, k.Results.GetResults()); err != nil {
				return err
			}
		case *agentv1.ConnectResponse_Release:
			s.onRelease(ctx, k.Release)
		case *agentv1.ConnectResponse_Progress:
			s.reports.addProgress(k.Progress)
		case *agentv1.ConnectResponse_Log:
			s.reports.addLog(k.Log)
		case *agentv1.ConnectResponse_Hello:
			s.onHello(ctx, k.Hello)
		}
	}
}

func (s *session) onHeartbeat(ctx context.Context, hb *agentv1.Heartbeat) {
	running := make(map[string]struct{}, len(hb.GetRunning()))
	for _, r := range hb.GetRunning() {
		running[r.GetExecutionId()] = struct{}{}
	}
	stale := time.Now().Add(-3 * s.d.cfg.HeartbeatInterval)
	s.mu.Lock()
	wasReady := s.healthy && !s.draining
	s.draining = hb.GetDraining()
	s.healthy = hb.GetServiceHealthy()
	s.holdUntil = time.Time{}
	s.lastHeard = time.Now()
	if len(hb.GetHandlers()) > 0 {
		s.handlers = handlerSet(hb.GetHandlers())
	}
	// An execution sent long ago that the agent no longer reports as running has ended
	// without this session hearing of it (its result comes on a later session).
	for id, sent := range s.outstanding {
		if _, ok := running[id]; !ok && sent.Before(stale) {
			delete(s.outstanding, id)
		}
	}
	ready := s.healthy && !s.draining
	s.mu.Unlock()
	if ready && !wasReady {
		s.d.Wake()
	}
	if len(hb.GetRunning()) == 0 {
		return
	}
	if _, err := s.d.store.ExtendLeases(ctx, s.agent.ID, refsFromProto(hb.GetRunning()), s.d.cfg.Lease); err != nil {
		s.d.cfg.Logger.Warn("extend leases", "agent", s.agent.ID, "err", err)
	}
}

// onResults records results and acknowledges them. A result is acknowledged only once the
// store has applied or rejected it; if the store is unreachable the results stay with the
// agent, which sends them again on the next session.
func (s *session) onResults(ctx context.Context, results []*agentv1.Result) error {
	completions := make([]store.Completion, 0, len(results))
	for _, r := range results {
		completions = append(completions, completionFromProto(r))
	}
	outcomes, err := s.d.store.CompleteExecutions(ctx, completions, retry.Plan)
	if err != nil {
		return fmt.Errorf("record %d results: %w", len(results), err)
	}
	ack := &agentv1.Ack{Results: make([]*agentv1.ResultAck, 0, len(outcomes))}
	retried := false
	for _, o := range outcomes {
		ack.Results = append(ack.Results, &agentv1.ResultAck{
			ExecutionId: o.ID, LeaseEpoch: o.Epoch, Applied: o.Applied, Reason: o.Reason,
		})
		if !o.Applied {
			s.d.obs.rejected(ctx, s.agent.ID, o)
		} else {
			s.d.obs.finished(o.Execution)
		}
		if o.RetryID != "" {
			retried = true
		}
	}
	s.mu.Lock()
	for _, r := range results {
		delete(s.outstanding, r.GetExecutionId())
		delete(s.cancelSent, r.GetExecutionId())
	}
	s.mu.Unlock()
	s.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Ack{Ack: ack}})
	s.d.Wake()
	if retried {
		s.d.wakeForRetries()
	}
	return nil
}

func (s *session) onRelease(ctx context.Context, rel *agentv1.Release) {
	refs := refsFromProto(rel.GetExecutions())
	if err := s.d.store.ReleaseExecutions(ctx, refs); err != nil {
		s.d.cfg.Logger.Warn("release executions", "agent", s.agent.ID, "err", err)
	}
	s.mu.Lock()
	for _, r := range refs {
		delete(s.outstanding, r.ID)
	}
	// An agent that hands work back is not offered more for a heartbeat interval.
	s.holdUntil = time.Now().Add(s.d.cfg.HeartbeatInterval)
	s.mu.Unlock()
	s.d.cfg.Logger.Info("agent released executions", "agent", s.agent.ID, "count", len(refs), "reason", rel.GetReason())
	s.d.Wake()
}

func handlerSet(names []string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}
