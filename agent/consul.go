package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// Defaults for ConsulConfig fields left zero, and the tag every agent's service carries.
const (
	DefaultConsulServiceName     = "tock-agent"
	DefaultConsulCheckInterval   = 5 * time.Second
	DefaultConsulCheckTimeout    = 2 * time.Second
	DefaultConsulDeregisterAfter = time.Minute

	// ConsulTag is on every Tock agent's Consul service.
	ConsulTag = "tock-agent"
	// ConsulCheckGRPCSuffix ends the id of the gRPC health check: "<service id>:grpc". It
	// passes while the agent serves; it is critical once the agent drains or dies.
	ConsulCheckGRPCSuffix = ":grpc"
	// ConsulCheckSessionSuffix ends the id of the TTL check: "<service id>:session". It
	// passes while Registration.Ready holds and turns critical otherwise (or when the agent
	// stops refreshing it). Its output is Registration.Status; Consul's catalog takes a new
	// output at once only with a new status (the local agent's /v1/agent/checks has the
	// latest).
	ConsulCheckSessionSuffix = ":session"
)

// ConsulConfig configures a ConsulRegistrar. The zero value of every field means its default.
type ConsulConfig struct {
	// API is the Consul client's configuration. Default: api.DefaultConfig(), which reads the
	// standard environment: CONSUL_HTTP_ADDR (default 127.0.0.1:8500), CONSUL_HTTP_TOKEN or
	// CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT,
	// CONSUL_CAPATH, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME,
	// CONSUL_HTTP_AUTH, CONSUL_NAMESPACE and CONSUL_PARTITION.
	API *api.Config
	// ServiceName is the Consul service every agent registers under; the control plane
	// watches this one name. Default: "tock-agent".
	ServiceName string
	// CheckInterval is how often Consul calls the agent's gRPC health service. Default: 5s.
	CheckInterval time.Duration
	// CheckTimeout bounds each of those calls. Default: 2s.
	CheckTimeout time.Duration
	// DeregisterAfter is how long the gRPC check may stay critical before Consul removes the
	// service, which cleans up after an agent that died without deregistering (Consul
	// enforces at least a minute). Default: 1m.
	DeregisterAfter time.Duration
	// GRPCUseTLS makes the gRPC health check use TLS, for an agent whose server has TLS
	// credentials (Config.ServerOptions). Default: false, plaintext.
	GRPCUseTLS bool
	// TLSSkipVerify makes the TLS health check skip verifying the agent's certificate.
	// Default: false.
	TLSSkipVerify bool
	// Logger receives a line when the registrar registers the service again because Consul
	// lost it. Default: slog.Default().
	Logger *slog.Logger
}

// ConsulRegistrar registers the agent as a service of the local Consul agent, with the
// agent's details in the service meta (see DecodeConsulMeta) and two checks: Consul calls
// the agent's gRPC health service, and a TTL check the agent refreshes, passing while it is
// ready for work (Registration.Ready) and critical otherwise. When Consul has lost the service
// (its agent restarted without state, or reaped the service), the next refresh registers it
// again. Close releases its connections.
type ConsulRegistrar struct {
	cfg    ConsulConfig
	client *api.Client
	http   *http.Client
	log    *slog.Logger

	mu sync.Mutex // serialises calls; protects registered
	// registered is the definition Consul last accepted; nil before the first registration
	// and once Consul is found to have lost it.
	registered *api.AgentServiceRegistration
}

// NewConsulRegistrar returns a Registrar for the Consul agent cfg.API names.
func NewConsulRegistrar(cfg ConsulConfig) (*ConsulRegistrar, error) {
	if cfg.API == nil {
		cfg.API = api.DefaultConfig()
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = DefaultConsulServiceName
	}
	setDefault(&cfg.CheckInterval, DefaultConsulCheckInterval)
	setDefault(&cfg.CheckTimeout, DefaultConsulCheckTimeout)
	setDefault(&cfg.DeregisterAfter, DefaultConsulDeregisterAfter)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client, err := api.NewClient(cfg.API)
	if err != nil {
		return nil, fmt.Errorf("set up consul client: %w", err)
	}
	return &ConsulRegistrar{cfg: cfg, client: client, http: cfg.API.HttpClient, log: cfg.Logger}, nil
}

// ServiceID returns the Consul service id of the agent with the given id: the service name, a
// dash and the agent id, with characters other than letters, digits and ".:_-" made "_".
func (c *ConsulRegistrar) ServiceID(agentID string) string {
	return c.cfg.ServiceName + "-" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".:_-", r):
			return r
		}
		return '_'
	}, agentID)
}

// Register implements Registrar: it registers the service when Consul does not have it as
// defined now, then sets the TTL check from r.Ready. It asks to be called again within a
// third of the TTL.
func (c *ConsulRegistrar) Register(ctx context.Context, r Registration) (time.Duration, error) {
	def, err := c.definition(r)
	if err != nil {
		return 0, fmt.Errorf("register agent %s in consul: %w", r.ID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.registered == nil || !reflect.DeepEqual(c.registered, def) {
		if err := c.register(ctx, def); err != nil {
			return 0, err
		}
	}
	err = c.updateTTL(ctx, def.ID, r)
	if isConsulNotFound(err) {
		c.log.Warn("consul lost the agent's service; registering it again", "service_id", def.ID)
		c.registered = nil
		if err := c.register(ctx, def); err != nil {
			return 0, err
		}
		err = c.updateTTL(ctx, def.ID, r)
	}
	if err != nil {
		return 0, err
	}
	return r.TTL / 3, nil
}

// Deregister implements Registrar. A service Consul no longer has is not an error.
func (c *ConsulRegistrar) Deregister(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.registered = nil
	sid := c.ServiceID(id)
	err := c.client.Agent().ServiceDeregisterOpts(sid, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil && !isConsulNotFound(err) {
		return fmt.Errorf("deregister consul service %s: %w", sid, err)
	}
	return nil
}

// Close closes the registrar's idle connections to Consul.
func (c *ConsulRegistrar) Close() {
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
}

func (c *ConsulRegistrar) register(ctx context.Context, def *api.AgentServiceRegistration) error {
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	if err := c.client.Agent().ServiceRegisterOpts(def, opts); err != nil {
		return fmt.Errorf("register consul service %s: %w", def.ID, err)
	}
	c.registered = def
	return nil
}

func (c *ConsulRegistrar) updateTTL(ctx context.Context, serviceID string, r Registration) error {
	status := api.HealthCritical
	if r.Ready {
		status = api.HealthPassing
	}
	checkID := serviceID + ConsulCheckSessionSuffix
	err := c.client.Agent().UpdateTTLOpts(checkID, r.Status, status, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("update consul check %s: %w", checkID, err)
	}
	return nil
}

// definition is the Consul service for r.
func (c *ConsulRegistrar) definition(r Registration) (*api.AgentServiceRegistration, error) {
	host, portText, err := net.SplitHostPort(r.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", r.Address, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("address %q: bad port", r.Address)
	}
	meta, _, err := encodeConsulMeta(r)
	if err != nil {
		return nil, err
	}
	id := c.ServiceID(r.ID)
	tags := []string{ConsulTag}
	if r.Service != ConsulTag {
		tags = append(tags, r.Service)
	}
	return &api.AgentServiceRegistration{
		ID:      id,
		Name:    c.cfg.ServiceName,
		Tags:    tags,
		Address: host,
		Port:    port,
		Meta:    meta,
		Weights: &api.AgentWeights{Passing: max(r.Weight, 1), Warning: 1},
		Checks: api.AgentServiceChecks{
			{
				CheckID:                        id + ConsulCheckGRPCSuffix,
				Name:                           "Tock agent gRPC health",
				Notes:                          "grpc.health.v1 of the agent's server: NOT_SERVING once it drains.",
				GRPC:                           r.Address,
				GRPCUseTLS:                     c.cfg.GRPCUseTLS,
				TLSSkipVerify:                  c.cfg.TLSSkipVerify,
				Interval:                       c.cfg.CheckInterval.String(),
				Timeout:                        c.cfg.CheckTimeout.String(),
				DeregisterCriticalServiceAfter: c.cfg.DeregisterAfter.String(),
			},
			{
				CheckID: id + ConsulCheckSessionSuffix,
				Name:    "Tock agent control-plane session",
				Notes: "Passing while a control-plane replica holds a session with the agent, the " +
					"local service is reachable and the agent is not draining.",
				TTL:    r.TTL.String(),
				Status: api.HealthCritical,
			},
		},
	}, nil
}

// isConsulNotFound reports whether Consul answered 404: it has no such service or check.
func isConsulNotFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}
