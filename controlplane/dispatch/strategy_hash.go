package dispatch

import (
	"github.com/tockhq/tock/controlplane/store"
)

// hashed places an execution of a consistent-hash job: every agent that may run it, on every
// replica, is ranked by the rendezvous hash of (hash key, agent id), and the execution goes to
// the top one. The key is the routing's hash key, or the job's name. So while the agents stay
// the same, every execution with the same key goes to the same agent, whichever replica claims
// it; when an agent leaves, only its keys move (each to its next-ranked agent), and an agent
// that joins takes only the keys it now ranks first for.
//
// This replica's agents count while they are ready (connected, healthy, not draining), other
// replicas' agents while discovery lists them. When the top agent is another replica's, the
// execution waits for that replica to claim it; when it is this replica's but full, it waits
// for a free slot there rather than go elsewhere.
func (p *placement) hashed(e *store.Execution) *slot {
	key := e.Route.HashKey
	if key == "" {
		key = e.Job
	}
	var (
		top       string
		topWeight uint64
		found     bool
	)
	consider := func(id string) {
		w := weight(key, id)
		if !found || w > topWeight || (w == topWeight && id < top) {
			top, topWeight, found = id, w, true
		}
	}
	for i := range p.slots {
		if p.slots[i].serves(e) {
			consider(p.slots[i].id)
		}
	}
	for i := range p.peers {
		if !p.peers[i].own && p.peers[i].serves(e) {
			consider(p.peers[i].id)
		}
	}
	if !found {
		return nil
	}
	for i := range p.slots {
		s := &p.slots[i]
		if s.id == top {
			if s.free <= 0 {
				return nil
			}
			return s
		}
	}
	return nil // another replica's agent
}
