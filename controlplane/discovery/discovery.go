// Package discovery finds the agents a control plane can dispatch to.
//
// One interface, several sources: the built-in registry keeps registrations in the store so
// that every replica sees them; Consul (production) watches the catalog.
package discovery

import (
	"context"
	"fmt"
	"slices"

	"github.com/tockhq/tock/controlplane/store"
)

// Agent is an agent a replica can dial.
type Agent struct {
	// ID is the agent's stable id.
	ID string
	// Service is the service it sits next to.
	Service string
	// Address is where it serves tock.agent.v1.AgentService.
	Address string
	// Labels, Weight, Capacity and Handlers are what it advertises at registration; the
	// session's Hello is authoritative once connected.
	Labels   map[string]string
	Weight   int
	Capacity int
	Handlers []string
}

// Discovery lists the agents that are alive now.
type Discovery interface {
	// Agents returns the live agents, by id.
	Agents(ctx context.Context) ([]Agent, error)
}

// Builtin is the built-in registry: agents register through the control plane's
// RegistryService and the registrations live in the store.
type Builtin struct {
	store store.Store
}

// NewBuiltin returns the built-in registry over st.
func NewBuiltin(st store.Store) *Builtin { return &Builtin{store: st} }

// Agents implements Discovery.
func (b *Builtin) Agents(ctx context.Context) ([]Agent, error) {
	rows, err := b.store.ListAgents(ctx)
	if err != nil {
		return nil, fmt.Errorf("list registered agents: %w", err)
	}
	agents := make([]Agent, 0, len(rows))
	for _, r := range rows {
		agents = append(agents, Agent{
			ID: r.ID, Service: r.Service, Address: r.Address, Labels: r.Labels,
			Weight: r.Weight, Capacity: r.Capacity, Handlers: slices.Clone(r.Handlers),
		})
	}
	return agents, nil
}
