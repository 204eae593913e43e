package dispatch

import (
	"math/rand/v2"

	"github.com/tockhq/tock/controlplane/discovery"
)

// claimOverscan is how many candidates a claim reads beyond the free capacity it fills (at
// least as many again, and at least minOverscan more): shortest-expected-job-first needs a
// choice among more candidates than there are free slots, and executions waiting for one
// agent (pinned, or hashed to a full agent or to another replica's) must not stop the others
// from being placed.
const minOverscan = 16

// claimWindow returns how many candidates to read to fill want free slots.
func claimWindow(want, maxBatch int) int {
	return min(maxBatch, want+max(want, minOverscan))
}

// setKnownAgents records the agents discovery last listed, every replica's.
func (d *Dispatcher) setKnownAgents(agents []discovery.Agent) {
	d.knownMu.Lock()
	defer d.knownMu.Unlock()
	d.known = agents
}

// peers returns the agents discovery last listed, marked with whether this replica owns them.
func (d *Dispatcher) peers(owns func(string) bool) []peer {
	d.knownMu.Lock()
	defer d.knownMu.Unlock()
	out := make([]peer, 0, len(d.known))
	for _, a := range d.known {
		var handlers map[string]struct{}
		if len(a.Handlers) > 0 {
			handlers = handlerSet(a.Handlers)
		}
		out = append(out, peer{id: a.ID, service: a.Service, labels: a.Labels, handlers: handlers, own: owns(a.ID)})
	}
	return out
}

// startPlacement starts the placement of one claim from the state the last committed claim
// left.
func (d *Dispatcher) startPlacement(slots []slot, owns func(string) bool) *placement {
	return newPlacement(slots, d.peers(owns), d.placeState, rand.Uint64())
}

// commitPlacement keeps what a committed claim's placement learned.
func (d *Dispatcher) commitPlacement(p *placement) {
	d.placeState = p.state
}
