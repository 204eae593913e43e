package dispatch

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/tockhq/tock/controlplane/discovery"
	"github.com/tockhq/tock/controlplane/store"
)

// mirror records the agents this replica owns in the store's agent registry, for a
// discovery source that does not keep them there itself (Consul): the API lists agents from
// the store, with the replica holding each one's session, whichever replica answers. Each
// owner refreshes its agents' records every third of their time to live, and at once when
// what discovery says of them changes; a record whose owner died lapses after the time to
// live, and the new owner records the agent again when it takes it. An agent discovery no
// longer lists at all is removed at once.
type mirror struct {
	ttl time.Duration
	// written is when each agent was last recorded, and as what; only the discovery loop
	// uses it.
	written map[string]mirrored
}

type mirrored struct {
	agent discovery.Agent
	at    time.Time
}

func newMirror(ttl time.Duration) *mirror {
	return &mirror{ttl: ttl, written: map[string]mirrored{}}
}

// sync records the owned agents whose record is due, and removes those discovery dropped.
func (m *mirror) sync(ctx context.Context, st store.Store, owned map[string]discovery.Agent, listed []discovery.Agent, now time.Time) error {
	for id, a := range owned {
		w, ok := m.written[id]
		if ok && now.Sub(w.at) < m.ttl/3 && sameAgent(w.agent, a) {
			continue
		}
		err := st.RegisterAgent(ctx, store.Agent{
			ID: a.ID, Service: a.Service, Address: a.Address, Labels: a.Labels,
			Weight: a.Weight, Capacity: a.Capacity, Handlers: a.Handlers,
		}, m.ttl)
		if err != nil {
			return err
		}
		m.written[id] = mirrored{agent: a, at: now}
	}
	present := make(map[string]bool, len(listed))
	for _, a := range listed {
		present[a.ID] = true
	}
	for id := range m.written {
		if owned[id].ID != "" {
			continue
		}
		delete(m.written, id)
		if !present[id] {
			if err := st.DeregisterAgent(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

func sameAgent(a, b discovery.Agent) bool {
	return a.ID == b.ID && a.Service == b.Service && a.Address == b.Address && a.Weight == b.Weight &&
		a.Capacity == b.Capacity && maps.Equal(a.Labels, b.Labels) && slices.Equal(a.Handlers, b.Handlers)
}
