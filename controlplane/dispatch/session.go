package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
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
	// A failed result write ends the stream with its error as the cause.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
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

	w := s.startWriters(ctx, cancel)
	writeErr := make(chan error, 1)
	go func() { writeErr <- s.write(ctx, stream) }()
	readErr := s.read(ctx, stream, w)
	cancel(nil)
	w.wait() // writes what is queued, under a context of its own
	werr := <-writeErr
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		return cause
	}
	if werr != nil && errors.Is(readErr, io.EOF) {
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
		if err := s.extendLeases(ctx, refsFromProto(running)); err != nil {
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

// read applies the agent's reports as they come. It never waits for the store: what is
// written there is handed to the stream's writers (storeWriters).
func (s *session) read(ctx context.Context, stream agentv1.AgentService_ConnectClient, w *storeWriters) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receive from agent: %w", err)
		}
		switch k := msg.GetKind().(type) {
		case *agentv1.ConnectResponse_Heartbeat:
			s.onHeartbeat(k.Heartbeat)
			// Only the newest heartbeat's executions matter: the others have ended.
			w.leases.replace(refsFromProto(k.Heartbeat.GetRunning()))
		case *agentv1.ConnectResponse_Started:
			w.reports.add(report{started: &startedGroup{
				at:   k.Started.GetTime().AsTime(),
				refs: refsFromProto(k.Started.GetExecutions()),
			}})
		case *agentv1.ConnectResponse_Results:
			// Recorded and acknowledged by the reports writer (recordResults), which frees
			// the agent's slots only then.
			results := k.Results.GetResults()
			ended := make(map[string]bool, len(results))
			reports := make([]report, len(results))
			for i, r := range results {
				ended[r.GetExecutionId()] = true
				reports[i] = report{result: r}
			}
			w.reports.add(reports...)
			// Their leases need no extension, and extending them would contend with the
			// result write for the same rows.
			w.leases.drop(func(r store.ExecRef) bool { return ended[r.ID] })
		case *agentv1.ConnectResponse_Release:
			w.reports.add(report{released: s.onRelease(k.Release)})
		case *agentv1.ConnectResponse_Progress:
			s.reports.addProgress(k.Progress)
		case *agentv1.ConnectResponse_Log:
			s.reports.addLog(k.Log)
		case *agentv1.ConnectResponse_Hello:
			s.onHello(ctx, k.Hello)
		}
	}
}

// onHeartbeat takes note of the agent's state; its leases are extended by the leases writer.
func (s *session) onHeartbeat(hb *agentv1.Heartbeat) {
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
}

// recordResults records results, which may come from several messages, in one store
// transaction and acknowledges them. Only then are the agent's slots freed: until then the
// results count against its capacity, so that an agent whose results are not recorded as fast
// as it produces them is offered less work rather than more than it can hold unacknowledged. A result is acknowledged only once the store has applied
// or rejected it; if the store fails, the error ends the stream and the results stay with the
// agent, which sends them again on the next session. Results recorded after the stream ended
// (streamCtx done) are not acknowledged: the agent sends them again, and they are rejected as
// recorded already.
func (s *session) recordResults(ctx, streamCtx context.Context, completions []store.Completion) error {
	outcomes, err := completeInParts(ctx, s.d.store, completions)
	if err != nil {
		return fmt.Errorf("record %d results: %w", len(completions), err)
	}
	s.mu.Lock()
	for _, c := range completions {
		delete(s.outstanding, c.ID)
		delete(s.cancelSent, c.ID)
	}
	s.mu.Unlock()
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
	if streamCtx.Err() == nil {
		select {
		case s.sendCh <- &agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Ack{Ack: ack}}:
		case <-streamCtx.Done():
		}
	}
	// Dependent jobs' executions may have been created.
	s.d.Wake()
	if retried {
		s.d.wakeForRetries()
	}
	return nil
}

// inParts runs write over items in one store transaction or, when the store gives up on it
// because it kept conflicting with concurrent transactions (store.ErrContended), over each
// half in turn, each split again the same way, down to single items. A large batch (an
// agent's reports re-sent after an outage, say) conflicts with more of what runs beside it,
// and on PostgreSQL its predicate locks grow to cover the whole table, so it can lose every
// retry while the smaller transactions around it commit. On an error, the halves already
// written stay written: every write here may be repeated (a result already recorded is
// rejected as finished, never applied twice; a start, a release or a lease extension is
// applied once).
func inParts[T any](items []T, write func([]T) error) error {
	err := write(items)
	if err == nil || len(items) <= 1 || !errors.Is(err, store.ErrContended) {
		return err
	}
	half := len(items) / 2
	if err := inParts(items[:half], write); err != nil {
		return err
	}
	return inParts(items[half:], write)
}

// completeInParts records completions through inParts; the outcomes are in the order of the
// completions.
func completeInParts(ctx context.Context, st store.Store, completions []store.Completion) ([]store.CompletionOutcome, error) {
	outcomes := make([]store.CompletionOutcome, 0, len(completions))
	err := inParts(completions, func(part []store.Completion) error {
		out, err := st.CompleteExecutions(ctx, part, retry.Plan)
		outcomes = append(outcomes, out...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return outcomes, nil
}

// extendLeases extends the leases of the agent's executions refs, through inParts.
func (s *session) extendLeases(ctx context.Context, refs []store.ExecRef) error {
	return inParts(refs, func(part []store.ExecRef) error {
		_, err := s.d.store.ExtendLeases(ctx, s.agent.ID, part, s.d.cfg.Lease)
		return err
	})
}

// onRelease takes note of executions the agent hands back and returns them, for the reports
// writer to put back to pending.
func (s *session) onRelease(rel *agentv1.Release) []store.ExecRef {
	refs := refsFromProto(rel.GetExecutions())
	s.mu.Lock()
	for _, r := range refs {
		delete(s.outstanding, r.ID)
	}
	// An agent that hands work back is not offered more for a heartbeat interval.
	s.holdUntil = time.Now().Add(s.d.cfg.HeartbeatInterval)
	s.mu.Unlock()
	s.d.cfg.Logger.Info("agent released executions", "agent", s.agent.ID, "count", len(refs), "reason", rel.GetReason())
	return refs
}

func handlerSet(names []string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}

// Tuning of the store writers of a stream.
const (
	// maxReportsPerWrite is the most reports (results, mostly) one write takes: its results
	// are recorded in one transaction and acknowledged in one message. More wait for the next
	// write.
	maxReportsPerWrite = 1000
	// writersFinalTimeout bounds the last writes when a stream ends.
	writersFinalTimeout = 5 * time.Second
)

// storeWriters write one stream's reports to the store off the session's reader, so that the
// reader never waits for the store, on two lanes:
//
//	reader ──Started, Release, Results──▶ reports lane ──MarkStarted, ReleaseExecutions,
//	       │                                              CompleteExecutions──▶ store, Ack
//	       └──Heartbeat──▶ leases lane (newest heartbeat only) ──ExtendLeases──▶ store
//
// Reports that arrive while a write is in flight are written together by the next; a write
// marks executions started before it records results, as the agent sent them (or, for an
// execution whose result it records, passes the start time with the result). Lease
// extensions never wait behind result writes; the executions whose results arrived are
// dropped from a pending extension, so that the two rarely write the same rows at once (under
// SERIALIZABLE, one of them would be retried). The store tolerates the lanes' writes in
// either order: ExtendLeases changes only live executions with the same lease epoch, so one
// applied after the execution's result or release does nothing.
type storeWriters struct {
	reports *lane[report]
	leases  *lane[store.ExecRef]
	wg      sync.WaitGroup
}

// report is one of the agent's reports for the reports lane: one field is set.
type report struct {
	started  *startedGroup
	released []store.ExecRef
	result   *agentv1.Result
}

// startedGroup is the executions of one Started message.
type startedGroup struct {
	at   time.Time
	refs []store.ExecRef
}

// startWriters runs the writers of the stream whose context is ctx until it ends. A failed
// result write ends the stream: it cancels ctx with the error as the cause.
func (s *session) startWriters(ctx context.Context, fail context.CancelCauseFunc) *storeWriters {
	w := &storeWriters{
		reports: newLane(maxReportsPerWrite, func(wctx context.Context, reports []report) error {
			return s.writeReports(wctx, ctx, reports)
		}),
		leases: newLane(0, func(wctx context.Context, refs []store.ExecRef) error {
			if err := s.extendLeases(wctx, refs); err != nil {
				s.d.cfg.Logger.Warn("extend leases", "agent", s.agent.ID, "err", err)
			}
			return nil
		}),
	}
	w.wg.Go(func() {
		if err := w.reports.run(ctx); err != nil && ctx.Err() == nil {
			fail(err)
		}
	})
	w.wg.Go(func() { _ = w.leases.run(ctx) })
	return w
}

// wait waits for the writers to end, after their last writes.
func (w *storeWriters) wait() {
	w.wg.Wait()
}

// writeReports applies reports of the stream whose context is streamCtx: executions started
// (one MarkStarted per start time: those started together share it), then releases, then
// results (recordResults), whose error it returns. An execution whose result is in the same
// write is not marked running first: its start time goes with the result, whose start the
// store records as the earlier of the two, as it would after MarkStarted.
func (s *session) writeReports(ctx, streamCtx context.Context, reports []report) error {
	var (
		started     = make(map[store.ExecRef]time.Time)
		released    []store.ExecRef
		completions []store.Completion
	)
	for _, r := range reports {
		switch {
		case r.started != nil:
			for _, ref := range r.started.refs {
				if _, ok := started[ref]; !ok { // the first report counts, as in the store
					started[ref] = r.started.at
				}
			}
		case r.result != nil:
			completions = append(completions, completionFromProto(r.result))
		default:
			released = append(released, r.released...)
		}
	}
	for i := range completions {
		c := &completions[i]
		if at, ok := started[c.ExecRef]; ok {
			delete(started, c.ExecRef)
			if c.StartedAt.IsZero() || at.Before(c.StartedAt) {
				c.StartedAt = at
			}
		}
	}
	byTime := make(map[time.Time][]store.ExecRef)
	for ref, at := range started {
		byTime[at] = append(byTime[at], ref)
	}
	for at, refs := range byTime {
		if err := inParts(refs, func(part []store.ExecRef) error { return s.d.store.MarkStarted(ctx, part, at) }); err != nil {
			s.d.cfg.Logger.Warn("mark started", "agent", s.agent.ID, "err", err)
		}
	}
	if len(released) > 0 {
		if err := inParts(released, func(part []store.ExecRef) error { return s.d.store.ReleaseExecutions(ctx, part) }); err != nil {
			s.d.cfg.Logger.Warn("release executions", "agent", s.agent.ID, "err", err)
		}
		s.d.Wake()
	}
	if len(completions) == 0 {
		return nil
	}
	return s.recordResults(ctx, streamCtx, completions)
}

// lane writes what a session's reader hands it on a goroutine of its own (run): what arrives
// while a write is in flight is written together by the next write, up to limit items (0: no
// limit). When its context ends it writes what is left, under a context of its own, within
// writersFinalTimeout.
type lane[T any] struct {
	limit int
	write func(ctx context.Context, items []T) error
	kick  chan struct{}

	mu    sync.Mutex // protects items
	items []T
}

func newLane[T any](limit int, write func(ctx context.Context, items []T) error) *lane[T] {
	return &lane[T]{limit: limit, write: write, kick: make(chan struct{}, 1)}
}

// add queues items for the next write; it never blocks.
func (l *lane[T]) add(items ...T) {
	l.mu.Lock()
	l.items = append(l.items, items...)
	l.mu.Unlock()
	l.wake()
}

// drop removes queued items that match.
func (l *lane[T]) drop(match func(T) bool) {
	l.mu.Lock()
	l.items = slices.DeleteFunc(l.items, match)
	l.mu.Unlock()
}

// replace queues items in place of those not written yet; it never blocks.
func (l *lane[T]) replace(items []T) {
	l.mu.Lock()
	l.items = items
	l.mu.Unlock()
	l.wake()
}

func (l *lane[T]) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// run writes until ctx ends, then writes what is left. A write's error ends it and is
// returned.
func (l *lane[T]) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), writersFinalTimeout)
			defer cancel()
			for {
				if more, err := l.flush(final); err != nil || !more {
					return err
				}
			}
		case <-l.kick:
		}
		if _, err := l.flush(ctx); err != nil {
			return err
		}
	}
}

// flush writes what is queued, up to limit items, and reports whether more is left (the lane
// is then kicked again).
func (l *lane[T]) flush(ctx context.Context) (more bool, err error) {
	l.mu.Lock()
	items := l.items
	if l.limit > 0 && len(items) > l.limit {
		items, l.items = items[:l.limit:l.limit], items[l.limit:]
		more = true
	} else {
		l.items = nil
	}
	l.mu.Unlock()
	if more {
		l.wake()
	}
	if len(items) == 0 {
		return more, nil
	}
	return more, l.write(ctx, items)
}
