package dispatch

import "time"

// silentAfter is how many heartbeat intervals an agent may stay silent on a live session
// before it is offered no more work: a hung or paused agent (its stream still open, its
// heartbeats stopped) would otherwise be handed work it cannot start, whose leases would
// then run out.
const silentAfter = 3

// silentLocked reports whether the agent has been silent too long at now. s.mu must be held.
func (s *session) silentLocked(now time.Time) bool {
	return !s.lastHeard.IsZero() && now.Sub(s.lastHeard) > silentAfter*s.d.cfg.HeartbeatInterval
}

// drainingWithWork reports whether the agent is draining with executions still out: its
// session is kept while it finishes them, even once discovery no longer lists it.
func (s *session) drainingWithWork() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up && s.draining && len(s.outstanding) > 0
}

// live reports whether the session is up and the agent heard from lately.
func (s *session) live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up && !s.lastHeard.IsZero() && !s.silentLocked(time.Now())
}

// observeLoadLocked records the agent's load right after an assignment to it: executions in
// flight over capacity. s.mu must be held.
func (s *session) observeLoadLocked() {
	if capacity := s.hello.GetCapacity(); capacity > 0 {
		s.d.metrics.loadAtAssign.Observe(float64(len(s.outstanding)) / float64(capacity))
	}
}
