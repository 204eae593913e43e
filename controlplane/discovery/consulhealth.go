package discovery

import (
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/tockhq/tock/agent"
)

// This file reads Consul's health entries: which agents and replicas are live, and what they
// advertise. It is pure, so the rules are tested as tables.

// MetaReplicaID is the service meta key holding a replica's id, exactly (the service id is
// derived from it).
const MetaReplicaID = "tock_replica_id"

// agentLive decides whether a tock-agent's entry makes it a live agent, one a replica may
// hold a session with: its node's checks and every check of its service pass, the gRPC
// health check above all, which Consul runs against the agent and which fails once the agent
// drains, dies, hangs or is paused. The agent's session TTL check does not count: the agent
// keeps it critical while no replica holds a session with it, so it cannot gate the session
// that would make it pass (and Consul's catalog takes a new output of a check that stays
// critical only minutes later, so its output cannot tell an expired check from a waiting one).
// It tells operators whether a replica holds the agent; the session's own heartbeats tell the
// replica.
func agentLive(e *api.ServiceEntry) bool {
	if e == nil || e.Service == nil {
		return false
	}
	session := e.Service.ID + agent.ConsulCheckSessionSuffix
	for _, c := range e.Checks {
		if c.ServiceID != "" && c.ServiceID != e.Service.ID {
			continue
		}
		if c.CheckID == session && c.ServiceID == e.Service.ID {
			continue
		}
		if c.Status != api.HealthPassing {
			return false
		}
	}
	return true
}

// replicaLive decides whether a replica's entry makes it live: its node's checks and its
// service's checks (its TTL check) all pass.
func replicaLive(e *api.ServiceEntry) bool {
	if e == nil || e.Service == nil {
		return false
	}
	for _, c := range e.Checks {
		if c.ServiceID != "" && c.ServiceID != e.Service.ID {
			continue
		}
		if c.Status != api.HealthPassing {
			return false
		}
	}
	return true
}

// entryAddress is where a service answers: its address, or its node's when it has none,
// with its port.
func entryAddress(e *api.ServiceEntry) string {
	host := e.Service.Address
	if host == "" && e.Node != nil {
		host = e.Node.Address
	}
	return net.JoinHostPort(host, strconv.Itoa(e.Service.Port))
}

// agentFromEntry reads what a tock-agent advertises in its service (agent.DecodeConsulMeta
// reads the meta the agent wrote). Handlers are nil when the agent had more than the meta
// holds: the session's Hello lists them all.
func agentFromEntry(e *api.ServiceEntry) (Agent, error) {
	r, complete, err := agent.DecodeConsulMeta(e.Service.Meta)
	if err != nil {
		return Agent{}, err
	}
	a := Agent{
		ID:       r.ID,
		Service:  r.Service,
		Address:  entryAddress(e),
		Labels:   r.Labels,
		Weight:   r.Weight,
		Capacity: r.Capacity,
		Handlers: r.Handlers,
	}
	if !complete {
		a.Handlers = nil
	}
	return a, nil
}

// replicaFromEntry reads a replica's service.
func replicaFromEntry(e *api.ServiceEntry) (Replica, bool) {
	id := e.Service.Meta[MetaReplicaID]
	if id == "" {
		return Replica{}, false
	}
	return Replica{ID: id, Address: entryAddress(e)}, true
}

// consulServiceID returns the Consul service id of a Tock process: the service name, a dash
// and its id, with characters other than letters, digits and ".:_-" made "_", as the agents
// derive theirs.
func consulServiceID(service, id string) string {
	return service + "-" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".:_-", r):
			return r
		}
		return '_'
	}, id)
}
