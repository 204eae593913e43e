package agent

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	defaultHeartbeat = time.Second
	// minHeartbeat keeps a misconfigured replica from making the agent spin.
	minHeartbeat = 10 * time.Millisecond
)

// agentServer implements tock.agent.v1.AgentService.
type agentServer struct {
	agentv1.UnimplementedAgentServiceServer
	a *Agent
}

// Connect serves one session with a replica.
func (s *agentServer) Connect(stream agentv1.AgentService_ConnectServer) error {
	return s.a.connect(stream)
}

// session is one Connect stream with the replica that owns the agent. Its reader goroutine
// applies the replica's messages; the goroutine serving the RPC is the only one that sends,
// taking messages from out and adding heartbeats.
type session struct {
	replicaID string
	epoch     int64
	heartbeat time.Duration
	out       *queue[*agentv1.ConnectResponse]

	// sentHandlers is the handler list the replica last heard; protected by Agent.mu.
	sentHandlers []string

	endOnce sync.Once
	endErr  error         // why the session ended; written before done is closed
	done    chan struct{} // closed when the session must end
}

// end makes the session's RPC return err (nil ends it with OK).
func (s *session) end(err error) {
	s.endOnce.Do(func() {
		s.endErr = err
		close(s.done)
	})
}

func (a *Agent) connect(stream agentv1.AgentService_ConnectServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	if open == nil {
		return status.Error(codes.InvalidArgument, "the first message of a session must be Open")
	}
	s, err := a.openSession(open)
	if err != nil {
		a.log.Warn("session refused", "replica_id", open.GetReplicaId(),
			"session_epoch", open.GetSessionEpoch(), "error", err)
		return err
	}
	a.log.Info("session opened", "replica_id", s.replicaID, "session_epoch", s.epoch,
		"heartbeat_interval", s.heartbeat)
	defer a.closeSession(s)

	readErr := make(chan error, 1)
	a.wg.Go(func() { readErr <- a.readSession(stream, s) })
	err = a.writeSession(stream, s, readErr)
	a.log.Info("session ended", "replica_id", s.replicaID, "session_epoch", s.epoch, "error", err)
	return err
}

// openSession makes a session for open the live one, replacing an older session, and queues
// its Hello followed by every unacknowledged result.
func (a *Agent) openSession(open *agentv1.Open) (*session, error) {
	hb := open.GetHeartbeatInterval().AsDuration()
	if hb <= 0 {
		hb = defaultHeartbeat
	}
	hb = max(hb, minHeartbeat)
	s := &session{
		replicaID: open.GetReplicaId(),
		epoch:     open.GetSessionEpoch(),
		heartbeat: hb,
		out:       newQueue[*agentv1.ConnectResponse](),
		done:      make(chan struct{}),
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, status.Error(codes.Unavailable, "the agent is shutting down")
	}
	if cur := a.session; cur != nil {
		if s.epoch < cur.epoch {
			return nil, status.Errorf(codes.FailedPrecondition,
				"session epoch %d is older than the live session's epoch %d", s.epoch, cur.epoch)
		}
		cur.end(status.Errorf(codes.Aborted, "session replaced by replica %q with epoch %d",
			s.replicaID, s.epoch))
	}
	a.session = s
	s.sentHandlers = slices.Clone(a.handlers)
	s.out.push(helloMessage(&agentv1.Hello{
		AgentId:  a.id,
		Service:  a.cfg.Service,
		Labels:   a.cfg.Labels,
		Weight:   clampInt32(a.cfg.Weight),
		Capacity: clampInt32(a.cfg.Capacity),
		Handlers: s.sentHandlers,
		Running:  runningList(a.running),
		Version:  Version,
		Draining: a.draining,
	}))
	if rs, resent := a.results.all(); len(rs) > 0 {
		s.out.push(resultsMessage(rs))
		a.metrics.resent.Add(float64(resent))
	}
	a.metrics.sessionConnects.Inc()
	a.registrationChangedLocked()
	return s, nil
}

// closeSession forgets s if it is still the live session.
func (a *Agent) closeSession(s *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session == s {
		a.session = nil
		a.sessionEnded = time.Now()
		a.registrationChangedLocked()
	}
	a.metrics.sessionDisconnects.Inc()
	s.end(nil)
}

// readSession applies the replica's messages until the stream ends.
func (a *Agent) readSession(stream agentv1.AgentService_ConnectServer, s *session) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		switch k := req.GetKind().(type) {
		case *agentv1.ConnectRequest_Open:
			return status.Error(codes.InvalidArgument, "Open may only be the first message of a session")
		case *agentv1.ConnectRequest_Assign:
			a.assign(s, k.Assign.GetAssignments())
		case *agentv1.ConnectRequest_Cancel:
			a.cancelExecution(s, k.Cancel)
		case *agentv1.ConnectRequest_Ack:
			a.ack(k.Ack.GetResults())
		default:
			a.log.Warn("ignoring unknown message from replica", "type", fmt.Sprintf("%T", k))
		}
	}
}

// writeSession sends queued messages and heartbeats until the session ends.
func (a *Agent) writeSession(stream agentv1.AgentService_ConnectServer, s *session, readErr <-chan error) error {
	ticker := time.NewTicker(s.heartbeat)
	defer ticker.Stop()
	flush := func() error {
		for _, m := range s.out.take() {
			if err := stream.Send(m); err != nil {
				return fmt.Errorf("send to replica: %w", err)
			}
		}
		return nil
	}
	if err := flush(); err != nil { // Hello and buffered results
		return err
	}
	for {
		select {
		case <-s.out.ready:
			if err := flush(); err != nil {
				return err
			}
		case <-ticker.C:
			if err := flush(); err != nil {
				return err
			}
			if hb := a.heartbeatFor(s); hb != nil {
				if err := stream.Send(hb); err != nil {
					return fmt.Errorf("send heartbeat: %w", err)
				}
			}
		case err := <-readErr:
			if errors.Is(err, io.EOF) {
				// The replica closed its side; it can still read what is queued.
				_ = flush()
				return nil
			}
			return err
		case <-s.done:
			_ = flush()
			return s.endErr
		}
	}
}

// heartbeatFor builds the next heartbeat of s, or nil when s is no longer the live session.
func (a *Agent) heartbeatFor(s *session) *agentv1.ConnectResponse {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session != s {
		return nil
	}
	hb := &agentv1.Heartbeat{
		Running:        runningList(a.running),
		Draining:       a.draining,
		ServiceHealthy: a.svc != nil,
	}
	if !slices.Equal(s.sentHandlers, a.handlers) {
		s.sentHandlers = slices.Clone(a.handlers)
		hb.Handlers = s.sentHandlers
	}
	return heartbeatMessage(hb)
}

func clampInt32(n int) int32 {
	return int32(min(max(n, 0), 1<<31-1))
}
