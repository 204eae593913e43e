package api

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// agentService implements tock.v1.AgentService.
type agentService struct {
	tockv1.UnimplementedAgentServiceServer
	s *Server
}

func (a *agentService) ListAgents(ctx context.Context, req *tockv1.ListAgentsRequest) (*tockv1.ListAgentsResponse, error) {
	agents, err := a.s.store.ListAgents(ctx)
	if err != nil {
		return nil, a.s.status("list agents", err, "")
	}
	inFlight, err := a.s.store.InFlight(ctx)
	if err != nil {
		return nil, a.s.status("list agents", err, "")
	}
	resp := &tockv1.ListAgentsResponse{Agents: make([]*tockv1.Agent, 0, len(agents))}
	for _, ag := range agents {
		if req.GetService() != "" && ag.Service != req.GetService() {
			continue
		}
		resp.Agents = append(resp.Agents, agentToProto(ag, inFlight[ag.ID]))
	}
	return resp, nil
}

// registryService implements tock.agent.v1.RegistryService, the built-in agent registry.
type registryService struct {
	agentv1.UnimplementedRegistryServiceServer
	s *Server
}

const (
	minRegistryTTL     = time.Second
	defaultRegistryTTL = 15 * time.Second
	maxRegistryWeight  = 1000
	maxRegistryCap     = 100000
)

func (r *registryService) Register(ctx context.Context, req *agentv1.RegisterRequest) (*agentv1.RegisterResponse, error) {
	if err := validateRegistration(req, r.s.cfg.RegistryTTLMax); err != nil {
		return nil, r.s.status("register agent", err, "")
	}
	ttl := defaultRegistryTTL
	if req.GetTtl() != nil {
		ttl = req.GetTtl().AsDuration()
	}
	if err := r.s.store.RegisterAgent(ctx, agentFromRegistration(req), ttl); err != nil {
		return nil, r.s.status("register agent", err, "agent "+quote(req.GetAgentId()))
	}
	return &agentv1.RegisterResponse{RefreshInterval: durationpb.New(ttl / 3)}, nil
}

func (r *registryService) Deregister(ctx context.Context, req *agentv1.DeregisterRequest) (*agentv1.DeregisterResponse, error) {
	if req.GetAgentId() == "" {
		return nil, r.s.status("deregister agent", invalid("agent_id", "is required"), "")
	}
	if err := r.s.store.DeregisterAgent(ctx, req.GetAgentId()); err != nil {
		return nil, r.s.status("deregister agent", err, "agent "+quote(req.GetAgentId()))
	}
	return &agentv1.DeregisterResponse{}, nil
}

func validateRegistration(req *agentv1.RegisterRequest, maxTTL time.Duration) error {
	switch {
	case req.GetAgentId() == "":
		return invalid("agent_id", "is required")
	case len(req.GetAgentId()) > 256:
		return invalid("agent_id", "is longer than 256 characters")
	case req.GetAddress() == "":
		return invalid("address", "is required: the host:port where the agent serves")
	case req.GetService() == "":
		return invalid("service", "is required")
	case req.GetWeight() < 1 || req.GetWeight() > maxRegistryWeight:
		return invalid("weight", "must be between 1 and %d, got %d", maxRegistryWeight, req.GetWeight())
	case req.GetCapacity() < 1 || req.GetCapacity() > maxRegistryCap:
		return invalid("capacity", "must be between 1 and %d, got %d", maxRegistryCap, req.GetCapacity())
	}
	if err := validateName("service", req.GetService()); err != nil {
		return err
	}
	if t := req.GetTtl(); t != nil {
		if err := t.CheckValid(); err != nil {
			return invalid("ttl", "is not a valid duration: %v", err)
		}
		if d := t.AsDuration(); d < minRegistryTTL || d > maxTTL {
			return invalid("ttl", "must be between %s and %s, got %s", minRegistryTTL, maxTTL, d)
		}
	}
	return nil
}
