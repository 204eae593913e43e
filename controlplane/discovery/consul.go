package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/tockhq/tock/agent"
)

// Defaults for ConsulConfig fields left zero.
const (
	DefaultConsulReplicaService  = "tock-replica"
	DefaultConsulWait            = 30 * time.Second
	DefaultConsulRecoveryGrace   = 30 * time.Second
	DefaultConsulBackoffMin      = 250 * time.Millisecond
	DefaultConsulBackoffMax      = 10 * time.Second
	DefaultConsulDeregisterAfter = time.Minute
	consulMinQueryInterval       = 50 * time.Millisecond
)

// ErrUnavailable wraps the errors of a registry that could not be reached at all (no answer,
// as opposed to an answer refusing the request). A replica that cannot reach its registry
// keeps its last view of the replicas rather than give up its agents: when Consul is down,
// every replica keeps dispatching.
var ErrUnavailable = errors.New("registry unavailable")

// ConsulConfig configures Consul. The zero value of every field means its default.
type ConsulConfig struct {
	// API is the Consul client's configuration. Default: api.DefaultConfig(), which reads
	// the standard environment: CONSUL_HTTP_ADDR (default 127.0.0.1:8500), CONSUL_HTTP_TOKEN
	// or CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL, CONSUL_CACERT, CONSUL_CLIENT_CERT,
	// CONSUL_CLIENT_KEY, CONSUL_NAMESPACE, CONSUL_PARTITION and the others of the api package.
	API *api.Config
	// AgentService is the Consul service the agents register under (tock-agent's
	// --consul-service). Default: "tock-agent".
	AgentService string
	// AgentTag, when set, keeps only the agents whose service carries this tag (each agent
	// is tagged with its Tock service name). Default: none, every agent.
	AgentTag string
	// ReplicaService is the Consul service the replicas register under. Default:
	// "tock-replica".
	ReplicaService string
	// Wait is how long a blocking query waits for a change. Default: 30s.
	Wait time.Duration
	// RecoveryGrace is how long, after Consul could not be reached or came back without its
	// state, agents and replicas that do not show are kept, so that they can register
	// again. Default: 30s.
	RecoveryGrace time.Duration
	// BackoffMin and BackoffMax bound the jittered backoff between failed queries.
	// Defaults: 250ms and 10s.
	BackoffMin, BackoffMax time.Duration
	// DeregisterAfter is how long a replica's check may stay critical before Consul removes
	// its service (Consul enforces at least a minute). Default: 1m.
	DeregisterAfter time.Duration
	// Logger receives the watches' logs. Default: slog.Default().
	Logger *slog.Logger
}

// Consul is discovery through Consul: it watches the agents' service (Discovery) and the
// replicas' (Replicas) with blocking queries, and registers this replica with a TTL check it
// refreshes. Start runs the watches; Stop ends them.
type Consul struct {
	cfg      ConsulConfig
	client   *api.Client
	agents   *watch[Agent]
	replicas *watch[Replica]

	mu sync.Mutex // serialises registrations; protects registered
	// registered is the replica service Consul last accepted; nil before the first
	// registration and once Consul is found to have lost it.
	registered *api.AgentServiceRegistration

	lifeMu sync.Mutex // protects cancel and done
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ Discovery = (*Consul)(nil)
	_ Replicas  = (*Consul)(nil)
)

// NewConsul returns discovery through the Consul agent cfg.API names.
func NewConsul(cfg ConsulConfig) (*Consul, error) {
	if cfg.API == nil {
		cfg.API = api.DefaultConfig()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Wait, DefaultConsulWait)
	def(&cfg.RecoveryGrace, DefaultConsulRecoveryGrace)
	def(&cfg.BackoffMin, DefaultConsulBackoffMin)
	def(&cfg.BackoffMax, DefaultConsulBackoffMax)
	def(&cfg.DeregisterAfter, DefaultConsulDeregisterAfter)
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffMin)
	if cfg.AgentService == "" {
		cfg.AgentService = agent.DefaultConsulServiceName
	}
	if cfg.ReplicaService == "" {
		cfg.ReplicaService = DefaultConsulReplicaService
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client, err := api.NewClient(cfg.API)
	if err != nil {
		return nil, fmt.Errorf("set up consul client: %w", err)
	}
	c := &Consul{cfg: cfg, client: client}
	wc := func(service string) watchConfig {
		return watchConfig{
			service: service, wait: cfg.Wait, recoveryGrace: cfg.RecoveryGrace,
			backoffMin: cfg.BackoffMin, backoffMax: cfg.BackoffMax,
			minInterval: consulMinQueryInterval, logger: cfg.Logger,
		}
	}
	c.agents = newWatch(wc(cfg.AgentService), c.healthQuery(cfg.AgentService, cfg.AgentTag), c.liveAgents)
	c.replicas = newWatch(wc(cfg.ReplicaService), c.healthQuery(cfg.ReplicaService, ""), liveReplicas)
	return c, nil
}

// Start runs the watches in the background until Stop. It is idempotent.
func (c *Consul) Start(ctx context.Context) {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.cancel != nil {
		return
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { c.agents.run(ctx) })
	wg.Go(func() { c.replicas.run(ctx) })
	go func() {
		wg.Wait()
		close(c.done)
	}()
}

// Stop ends the watches, waits for them and closes the idle connections to Consul. It is
// idempotent.
func (c *Consul) Stop() {
	c.lifeMu.Lock()
	cancel, done := c.cancel, c.done
	c.lifeMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if hc := c.cfg.API.HttpClient; hc != nil {
		hc.CloseIdleConnections()
	}
}

// Agents implements Discovery: the live agents as last seen, never waiting for Consul. It
// fails only before Consul first answered.
func (c *Consul) Agents(context.Context) ([]Agent, error) {
	return c.agents.members()
}

// Replicas implements Replicas: the live replicas as last seen.
func (c *Consul) Replicas(context.Context) ([]Replica, error) {
	return c.replicas.members()
}

// RegisterReplica implements Replicas: it registers the replica's service with the local
// Consul agent when Consul does not have it as defined now, then passes its TTL check. A
// Consul that cannot be reached gives an error wrapping ErrUnavailable.
func (c *Consul) RegisterReplica(ctx context.Context, r Replica, ttl time.Duration) error {
	def, err := c.replicaDefinition(r, ttl)
	if err != nil {
		return fmt.Errorf("register replica %s in consul: %w", r.ID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.registered == nil || !reflect.DeepEqual(c.registered, def) {
		if err := c.register(ctx, def); err != nil {
			return err
		}
	}
	err = c.passTTL(ctx, def.ID)
	if isNotFound(err) {
		// Consul lost the service: its agent restarted without its state.
		c.cfg.Logger.Warn("consul lost this replica's service; registering it again", "service_id", def.ID)
		c.registered = nil
		if err := c.register(ctx, def); err != nil {
			return err
		}
		err = c.passTTL(ctx, def.ID)
	}
	return err
}

// DeregisterReplica implements Replicas. A service Consul no longer has is not an error.
func (c *Consul) DeregisterReplica(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.registered = nil
	sid := consulServiceID(c.cfg.ReplicaService, id)
	err := c.client.Agent().ServiceDeregisterOpts(sid, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deregister consul service %s: %w", sid, classify(err))
	}
	return nil
}

func (c *Consul) register(ctx context.Context, def *api.AgentServiceRegistration) error {
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	if err := c.client.Agent().ServiceRegisterOpts(def, opts); err != nil {
		return fmt.Errorf("register consul service %s: %w", def.ID, classify(err))
	}
	c.registered = def
	return nil
}

func (c *Consul) passTTL(ctx context.Context, serviceID string) error {
	checkID := serviceID + ":ttl"
	err := c.client.Agent().UpdateTTLOpts(checkID, "registered", api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("update consul check %s: %w", checkID, classify(err))
	}
	return nil
}

// replicaDefinition is the Consul service of a replica: its gRPC address, its id in the
// meta, and a TTL check that passes from registration.
func (c *Consul) replicaDefinition(r Replica, ttl time.Duration) (*api.AgentServiceRegistration, error) {
	host, portText, err := net.SplitHostPort(r.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", r.Address, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("address %q: bad port", r.Address)
	}
	id := consulServiceID(c.cfg.ReplicaService, r.ID)
	return &api.AgentServiceRegistration{
		ID:      id,
		Name:    c.cfg.ReplicaService,
		Tags:    []string{"tock-replica"},
		Address: host,
		Port:    port,
		Meta:    map[string]string{MetaReplicaID: r.ID},
		Check: &api.AgentServiceCheck{
			CheckID:                        id + ":ttl",
			Name:                           "Tock replica registration",
			Notes:                          "Passing while the replica refreshes its registration; agent ownership is shared out over the passing replicas.",
			TTL:                            ttl.String(),
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: c.cfg.DeregisterAfter.String(),
		},
	}, nil
}

// healthQuery returns the query of one service's health entries, every entry whatever its
// checks say (the rules of what is live are ours: see agentLive).
func (c *Consul) healthQuery(service, tag string) healthQuery {
	return func(ctx context.Context, index uint64, wait time.Duration) ([]*api.ServiceEntry, *api.QueryMeta, error) {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx)
		entries, meta, err := c.client.Health().Service(service, tag, false, q)
		if err != nil {
			return nil, nil, fmt.Errorf("health of consul service %s: %w", service, classify(err))
		}
		return entries, meta, nil
	}
}

// liveAgents decodes the live agents among entries. An entry whose meta does not decode is
// left out and logged.
func (c *Consul) liveAgents(entries []*api.ServiceEntry) map[string]Agent {
	out := make(map[string]Agent, len(entries))
	for _, e := range entries {
		if !agentLive(e) {
			continue
		}
		a, err := agentFromEntry(e)
		if err != nil {
			c.cfg.Logger.Warn("consul service is not a tock-agent's; ignoring it", "service_id", e.Service.ID, "err", err)
			continue
		}
		out[a.ID] = a
	}
	return out
}

// liveReplicas decodes the live replicas among entries.
func liveReplicas(entries []*api.ServiceEntry) map[string]Replica {
	out := make(map[string]Replica, len(entries))
	for _, e := range entries {
		if !replicaLive(e) {
			continue
		}
		if r, ok := replicaFromEntry(e); ok {
			out[r.ID] = r
		}
	}
	return out
}

// classify wraps err with ErrUnavailable when Consul did not answer at all.
func classify(err error) error {
	var se api.StatusError
	if err == nil || errors.As(err, &se) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// isNotFound reports whether Consul answered 404: it has no such service or check.
func isNotFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}
