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
	// Ready reports whether the agent can take work: a control-plane replica holds a session
	// with it (or held one less than Config.SessionGrace ago), the local service is reachable
	// and the agent is not draining. Registries that publish readiness (Consul's TTL check)
	// use it; the built-in registry ignores it, since the replica holding the session knows.
	Ready bool
	// Status says in words why the agent is ready or not, for operators.
	Status string
}

// Registrar records the agent in a registry the control plane watches. The built-in
// registry is reached through GRPCRegistrar, Consul through ConsulRegistrar.
//
// The agent calls Register from one goroutine: at start, every refresh interval, and at once
// when the registration changes (handlers, readiness); then Deregister once, at shutdown.
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

// registrationChangedLocked wakes the registration loop, so that a change the registry should
// see (handlers, readiness) is registered at once. The caller holds a.mu.
func (a *Agent) registrationChangedLocked() {
	select {
	case a.regChanged <- struct{}{}:
	default:
	}
}

// registration describes the agent as it is at now. recheck, when not zero, is when the
// readiness changes by itself (the session grace runs out), so the registration is refreshed
// then.
func (a *Agent) registration(address string, now time.Time) (r Registration, recheck time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r = Registration{
		ID:       a.id,
		Service:  a.cfg.Service,
		Address:  address,
		Labels:   maps.Clone(a.cfg.Labels),
		Weight:   a.cfg.Weight,
		Capacity: a.cfg.Capacity,
		Handlers: slices.Clone(a.handlers),
		TTL:      a.cfg.RegistrationTTL,
	}
	switch {
	case a.draining:
		r.Status = "draining: taking no new work"
	case a.svc == nil:
		r.Status = fmt.Sprintf("the local service at %s is unreachable", a.cfg.AppAddr)
	case a.session != nil:
		r.Ready = true
		r.Status = fmt.Sprintf("in session with replica %s (epoch %d); local service reachable",
			a.session.replicaID, a.session.epoch)
	case a.sessionEnded.IsZero():
		r.Status = "waiting for a control-plane replica to open a session"
	default:
		gone := now.Sub(a.sessionEnded)
		if gone < a.cfg.SessionGrace {
			r.Ready = true
			r.Status = fmt.Sprintf("session ended %s ago; waiting for a replica to reconnect",
				gone.Round(time.Millisecond))
			recheck = a.sessionEnded.Add(a.cfg.SessionGrace)
		} else {
			r.Status = fmt.Sprintf("no control-plane session since %s", a.sessionEnded.UTC().Format(time.RFC3339))
		}
	}
	return r, recheck
}

// runRegistration registers the agent and keeps the registration fresh until ctx is done:
// again after the interval the registry asks for (a third of the TTL when it does not say), at
// once when something the registration carries changes (at most every minRegisterInterval),
// and with backoff and jitter after a failure.
func (a *Agent) runRegistration(ctx context.Context, address string) {
	bo := newBackoff(registerBackoffMin, registerBackoffMax)
	registered := false
	for {
		began := time.Now()
		r, recheck := a.registration(address, began)
		callCtx, cancel := context.WithTimeout(ctx, registryCallTimeout)
		refresh, err := a.cfg.Registry.Register(callCtx, r)
		cancel()
		if ctx.Err() != nil {
			return
		}
		var delay time.Duration
		var changed <-chan struct{}
		if err != nil {
			a.metrics.registrationErrors.Inc()
			delay = bo.next()
			a.log.Warn("registration failed; retrying", "error", err, "retry_in", delay)
		} else {
			bo.reset()
			if !registered {
				a.log.Info("registered", "agent_id", r.ID, "address", address, "ttl", r.TTL)
				registered = true
			}
			delay = refresh
			if delay <= 0 {
				delay = a.cfg.RegistrationTTL / 3
			}
			if !recheck.IsZero() {
				delay = min(delay, recheck.Sub(began))
			}
			delay = max(delay, minRegisterInterval)
			changed = a.regChanged
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-changed:
			timer.Stop()
			// Coalesce bursts of changes: at most one registration per minRegisterInterval.
			if !sleep(ctx, minRegisterInterval-time.Since(began)) {
				return
			}
		}
	}
}

// sleep waits for d or until ctx is done, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
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
