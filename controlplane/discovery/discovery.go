// Package discovery finds the agents a control plane can dispatch to, and the control-plane
// replicas that share them out.
//
// One pair of interfaces, several sources: the built-in registry keeps registrations in the
// store so that every replica sees them; Consul (production) watches the catalog. Agents
// register themselves (Discovery lists them); replicas register themselves too (Replicas),
// and each agent is owned by one live replica, chosen by rendezvous hashing over them.
package discovery

import (
	"context"
	"fmt"
	"slices"
	"time"

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

// Replica is a control-plane replica.
type Replica struct {
	// ID is the replica's stable id; ownership is computed over these.
	ID string
	// Address is where its gRPC API answers.
	Address string
}

// Replicas is the registry of control-plane replicas. A replica registers itself with a time
// to live and refreshes it; the replicas registered and not expired are the live set agent
// ownership is decided over.
type Replicas interface {
	// Replicas returns the live replicas, by id.
	Replicas(ctx context.Context) ([]Replica, error)
	// RegisterReplica records or refreshes r's registration; it lapses ttl after the
	// registry's clock unless refreshed.
	RegisterReplica(ctx context.Context, r Replica, ttl time.Duration) error
	// DeregisterReplica removes a replica's registration at once, so that the others take
	// its agents without waiting for it to lapse.
	DeregisterReplica(ctx context.Context, id string) error
}

// Builtin is the built-in registry: agents register through the control plane's
// RegistryService, replicas register directly, and the registrations live in the store.
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

// Replicas implements Replicas.
func (b *Builtin) Replicas(ctx context.Context) ([]Replica, error) {
	rows, err := b.store.ListReplicas(ctx)
	if err != nil {
		return nil, fmt.Errorf("list registered replicas: %w", err)
	}
	replicas := make([]Replica, 0, len(rows))
	for _, r := range rows {
		replicas = append(replicas, Replica{ID: r.ID, Address: r.Address})
	}
	return replicas, nil
}

// RegisterReplica implements Replicas.
func (b *Builtin) RegisterReplica(ctx context.Context, r Replica, ttl time.Duration) error {
	return b.store.RegisterReplica(ctx, store.Replica{ID: r.ID, Address: r.Address}, ttl)
}

// DeregisterReplica implements Replicas.
func (b *Builtin) DeregisterReplica(ctx context.Context, id string) error {
	return b.store.DeregisterReplica(ctx, id)
}
