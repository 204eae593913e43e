package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tockhq/tock/controlplane/discovery"
	"github.com/tockhq/tock/controlplane/store"
)

// Values of --discovery.
const (
	discoveryBuiltin = "builtin"
	discoveryConsul  = "consul"
)

// registries is where a replica finds agents and the other replicas.
type registries struct {
	agents   discovery.Discovery
	replicas discovery.Replicas
	// mirror is true when the agents are not in the store by themselves (Consul): the
	// dispatcher records those it owns there, for the API.
	mirror bool
	start  func(ctx context.Context)
	stop   func()
}

// openDiscovery returns the registries --discovery names: the built-in one in the store, or
// Consul as the CONSUL_* environment (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, …) configures its
// client.
func openDiscovery(cfg Config, st store.Store, log *slog.Logger) (registries, error) {
	switch cfg.Discovery {
	case "", discoveryBuiltin:
		b := discovery.NewBuiltin(st)
		return registries{agents: b, replicas: b, start: func(context.Context) {}, stop: func() {}}, nil
	case discoveryConsul:
		c, err := discovery.NewConsul(discovery.ConsulConfig{
			AgentService:   cfg.ConsulService,
			AgentTag:       cfg.ConsulTag,
			ReplicaService: cfg.ConsulReplicaService,
			Logger:         log,
		})
		if err != nil {
			return registries{}, err
		}
		return registries{agents: c, replicas: c, mirror: true, start: c.Start, stop: c.Stop}, nil
	}
	return registries{}, fmt.Errorf("--discovery %q: want builtin or consul", cfg.Discovery)
}
