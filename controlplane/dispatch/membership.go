package dispatch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/tockhq/tock/controlplane/discovery"
)

// membership is this replica's place among the live replicas: it keeps this replica's
// registration alive, holds the last known live set, and says which agents this replica
// owns (rendezvous hashing over the set).
//
// A replica owns nothing unless its own registration is known to hold: after a successful
// registration it counts TTL − TTL/5 on its own clock, so it stops dispatching before the
// others, which read the registry's clock, can see the registration lapse and take its
// agents over. When the live set cannot be read, the last known one is kept. When the
// registry does not answer at all (ErrUnavailable: Consul is down), nobody can see a
// registration lapse there, so the registration counts as refreshed and the replica keeps
// its agents.
type membership struct {
	self discovery.Replica
	reg  discovery.Replicas // nil: a replica alone, owning every agent
	ttl  time.Duration
	now  func() time.Time

	mu         sync.Mutex // protects the fields below
	live       []string   // ids of the live replicas, sorted, self included once registered
	validUntil time.Time  // local time until which this replica's registration holds
	left       bool       // deregistered: owns nothing any more
}

func newMembership(self discovery.Replica, reg discovery.Replicas, ttl time.Duration, now func() time.Time) *membership {
	return &membership{self: self, reg: reg, ttl: ttl, now: now}
}

// register records or refreshes this replica's registration.
func (m *membership) register(ctx context.Context) error {
	if m.reg == nil {
		return nil
	}
	m.mu.Lock()
	left := m.left
	m.mu.Unlock()
	if left {
		return nil
	}
	start := m.now()
	if err := m.reg.RegisterReplica(ctx, m.self, m.ttl); err != nil {
		if errors.Is(err, discovery.ErrUnavailable) {
			// The registry does not answer at all (Consul down): no replica can see
			// anything change there, so this one keeps the view it had, and its agents,
			// rather than stop dispatching. Agents settle any overlap with a replica that
			// could see it: the session with the higher epoch wins.
			m.mu.Lock()
			if !m.left && !m.validUntil.IsZero() {
				m.validUntil = start.Add(m.ttl - m.ttl/5)
			}
			m.mu.Unlock()
		}
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.left {
		m.validUntil = start.Add(m.ttl - m.ttl/5)
	}
	return nil
}

// refresh reads the live set. On error the last known set stays.
func (m *membership) refresh(ctx context.Context) error {
	if m.reg == nil {
		return nil
	}
	replicas, err := m.reg.Replicas(ctx)
	if err != nil {
		return err
	}
	live := make([]string, 0, len(replicas))
	for _, r := range replicas {
		live = append(live, r.ID)
	}
	slices.Sort(live)
	m.mu.Lock()
	m.live = slices.Compact(live)
	m.mu.Unlock()
	return nil
}

// leave deregisters this replica, so that the others take its agents at once; from then on
// it owns nothing.
func (m *membership) leave(ctx context.Context) error {
	m.mu.Lock()
	m.left = true
	m.validUntil = time.Time{}
	m.mu.Unlock()
	if m.reg == nil {
		return nil
	}
	return m.reg.DeregisterReplica(ctx, m.self.ID)
}

// view returns a function that says whether this replica owns an agent, as of now. The set
// is copied once, so one view answers consistently for many agents.
func (m *membership) view() func(agentID string) bool {
	if m.reg == nil {
		m.mu.Lock()
		left := m.left
		m.mu.Unlock()
		return func(string) bool { return !left }
	}
	m.mu.Lock()
	valid := !m.left && m.now().Before(m.validUntil)
	live := m.live
	if valid && !slices.Contains(live, m.self.ID) {
		// Registered, but the set was read before the registration: count this replica in.
		live = append(slices.Clone(live), m.self.ID)
	}
	m.mu.Unlock()
	if !valid {
		return func(string) bool { return false }
	}
	return func(agentID string) bool { return Owner(agentID, live) == m.self.ID }
}

// owns reports whether this replica owns the agent now.
func (m *membership) owns(agentID string) bool {
	return m.view()(agentID)
}

// liveSet returns the last known live set.
func (m *membership) liveSet() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.live)
}
