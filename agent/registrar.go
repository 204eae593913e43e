package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// registryCallTimeout bounds each Register and Deregister call.
	registryCallTimeout = 5 * time.Second
	// minRegisterInterval keeps a registry that asks for absurdly frequent refreshes from
	// making the agent spin.
	minRegisterInterval = 100 * time.Millisecond
	registerBackoffMin  = 250 * time.Millisecond
	registerBackoffMax  = 5 * time.Second
)

// Registration is what an agent tells a registry about itself.
type Registration struct {
	// ID is the agent's stable id.
	ID string
	// Service is the name of the service the agent sits next to.
	Service string
	// Address is where the control plane dials the agent (host:port).
	Address string
	// Labels are the agent's labels.
	Labels map[string]string
	// Weight is the agent's weight for weighted strategies.
	Weight int
	// Capacity is the most executions the agent runs at once.
	Capacity int
	// Handlers are the handlers the local service serves.
	Handlers []string
	// TTL is how long the registration lasts unless refreshed.
	TTL time.Duration
}

// Registrar records the agent in a registry the control plane watches. The built-in
// registry is reached through GRPCRegistrar; other registries implement the same interface.
type Registrar interface {
	// Register records or refreshes r. It returns how soon to register again; zero means
	// the registrar has no opinion and the agent uses a third of the TTL.
	Register(ctx context.Context, r Registration) (refresh time.Duration, err error)
	// Deregister removes the agent's registration.
	Deregister(ctx context.Context, id string) error
}

// GRPCRegistrar registers with the control plane's built-in registry
// (tock.agent.v1.RegistryService).
type GRPCRegistrar struct {
	client agentv1.RegistryServiceClient
}

// NewGRPCRegistrar returns a Registrar that calls RegistryService over cc.
func NewGRPCRegistrar(cc grpc.ClientConnInterface) *GRPCRegistrar {
	return &GRPCRegistrar{client: agentv1.NewRegistryServiceClient(cc)}
}

// Register implements Registrar.
func (g *GRPCRegistrar) Register(ctx context.Context, r Registration) (time.Duration, error) {
	resp, err := g.client.Register(ctx, &agentv1.RegisterRequest{
		AgentId:  r.ID,
		Service:  r.Service,
		Address:  r.Address,
		Labels:   r.Labels,
		Weight:   clampInt32(r.Weight),
		Capacity: clampInt32(r.Capacity),
		Handlers: r.Handlers,
		Ttl:      durationpb.New(r.TTL),
	})
	if err != nil {
		return 0, fmt.Errorf("register agent %s: %w", r.ID, err)
	}
	return resp.GetRefreshInterval().AsDuration(), nil
}

// Deregister implements Registrar.
func (g *GRPCRegistrar) Deregister(ctx context.Context, id string) error {
	if _, err := g.client.Deregister(ctx, &agentv1.DeregisterRequest{AgentId: id}); err != nil {
		return fmt.Errorf("deregister agent %s: %w", id, err)
	}
	return nil
}

// registration describes the agent as it is now.
func (a *Agent) registration(address string) Registration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Registration{
		ID:       a.id,
		Service:  a.cfg.Service,
		Address:  address,
		Labels:   maps.Clone(a.cfg.Labels),
		Weight:   a.cfg.Weight,
		Capacity: a.cfg.Capacity,
		Handlers: slices.Clone(a.handlers),
		TTL:      a.cfg.RegistrationTTL,
	}
}

// runRegistration registers the agent and keeps the registration fresh until ctx is done:
// again after the interval the registry asks for (a third of the TTL when it does not say),
// at once when the handler list changes, and with backoff and jitter after a failure.
func (a *Agent) runRegistration(ctx context.Context, address string) {
	bo := newBackoff(registerBackoffMin, registerBackoffMax)
	registered := false
	for {
		callCtx, cancel := context.WithTimeout(ctx, registryCallTimeout)
		refresh, err := a.cfg.Registry.Register(callCtx, a.registration(address))
		cancel()
		if ctx.Err() != nil {
			return
		}
		var delay time.Duration
		var handlersChanged <-chan struct{}
		if err != nil {
			delay = bo.next()
			a.log.Warn("registration failed; retrying", "error", err, "retry_in", delay)
		} else {
			bo.reset()
			if !registered {
				a.log.Info("registered", "agent_id", a.ID(), "address", address, "ttl", a.cfg.RegistrationTTL)
				registered = true
			}
			delay = refresh
			if delay <= 0 {
				delay = a.cfg.RegistrationTTL / 3
			}
			delay = max(delay, minRegisterInterval)
			handlersChanged = a.handlersChanged
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-handlersChanged:
			timer.Stop()
		}
	}
}

// deregister removes the registration; it runs after ctx is done, so it uses a context of
// its own.
func (a *Agent) deregister(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registryCallTimeout)
	defer cancel()
	if err := a.cfg.Registry.Deregister(ctx, a.ID()); err != nil {
		a.log.Warn("deregistration failed; the registration expires after its TTL", "error", err)
		return
	}
	a.log.Info("deregistered", "agent_id", a.ID())
}
