package agent_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/agent"
	"github.com/tockhq/tock/tools/testenv"
)

// consulWait bounds waits on Consul: its checks run every second, and a restart takes a few.
const consulWait = 30 * time.Second

// consulEnv is a real Consul agent and a Tock agent registered in it.
type consulEnv struct {
	*env
	consul *testenv.ConsulAgent
	api    *api.Client // the test's own client, to read the catalog
	reg    *agent.ConsulRegistrar
}

// setupConsul starts Consul and an agent registered in it through a ConsulRegistrar.
func setupConsul(t *testing.T, mutate func(*agent.Config)) *consulEnv {
	t.Helper()
	c := testenv.Consul(t)
	reg, err := agent.NewConsulRegistrar(agent.ConsulConfig{
		API:           &api.Config{Address: c.HTTPAddr, Transport: &http.Transport{}},
		CheckInterval: time.Second,
		Logger:        testLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(reg.Close) // after the agent has stopped: cleanups run last first
	e := setup(t, func(cfg *agent.Config) {
		cfg.Registry = reg
		cfg.RegistrationTTL = 3 * time.Second
		cfg.SessionGrace = 300 * time.Millisecond
		if mutate != nil {
			mutate(cfg)
		}
	})
	return &consulEnv{env: e, consul: c, api: consulClient(t, c.HTTPAddr), reg: reg}
}

// consulClient returns an API client whose connections are closed when the test ends.
func consulClient(t *testing.T, addr string) *api.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client, err := api.NewClient(&api.Config{Address: addr, Transport: tr})
	require.NoError(t, err)
	return client
}

// consulEntry is an agent's service in Consul's health view, with its checks by id suffix.
type consulEntry struct {
	service *api.AgentService
	grpc    *api.HealthCheck
	session *api.HealthCheck
}

// entries returns the agents registered under the tock-agent service, by agent service id.
func entries(t *testing.T, client *api.Client) map[string]consulEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	list, _, err := client.Health().Service(agent.DefaultConsulServiceName, agent.ConsulTag, false,
		(&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil // Consul restarting; callers poll
	}
	out := map[string]consulEntry{}
	for _, se := range list {
		ce := consulEntry{service: se.Service}
		for _, c := range se.Checks {
			switch c.CheckID {
			case se.Service.ID + agent.ConsulCheckGRPCSuffix:
				ce.grpc = c
			case se.Service.ID + agent.ConsulCheckSessionSuffix:
				ce.session = c
			}
		}
		out[se.Service.ID] = ce
	}
	// The catalog takes a check's output only when its status changes (Consul syncs output
	// alone every few minutes); the local agent has the latest.
	local, err := client.Agent().ChecksWithFilterOpts("", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil
	}
	for _, ce := range out {
		for _, c := range []*api.HealthCheck{ce.grpc, ce.session} {
			if c == nil {
				continue
			}
			if lc, ok := local[c.CheckID]; ok {
				c.Output = lc.Output
			}
		}
	}
	return out
}

// waitEntry polls Consul until the agent's entry satisfies ok, and returns it.
func (ce *consulEnv) waitEntry(what string, ok func(consulEntry) bool) consulEntry {
	ce.t.Helper()
	id := ce.reg.ServiceID(ce.agent.ID())
	deadline := time.Now().Add(consulWait)
	for {
		last, found := entries(ce.t, ce.api)[id]
		if found && last.grpc != nil && last.session != nil && ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			ce.t.Fatalf("consul never showed %s; last: found=%v gRPC check %+v, TTL check %+v", what, found, last.grpc, last.session)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

func TestConsulRegistration(t *testing.T) {
	t.Parallel()
	ce := setupConsul(t, nil)
	ce.waitHealthy()

	// Registered before any replica connects: alive (gRPC check) but not ready (TTL check).
	entry := ce.waitEntry("the gRPC check passing", func(e consulEntry) bool {
		return e.grpc.Status == api.HealthPassing &&
			strings.Contains(e.session.Output, "waiting for a control-plane replica")
	})
	require.Equal(t, api.HealthCritical, entry.session.Status)

	svc := entry.service
	require.Equal(t, "tock-agent-agent-1", svc.ID)
	require.Equal(t, agent.DefaultConsulServiceName, svc.Service)
	require.Equal(t, []string{agent.ConsulTag, "billing"}, svc.Tags)
	host, port, err := net.SplitHostPort(ce.conn.Target())
	require.NoError(t, err)
	require.Equal(t, host, svc.Address)
	require.Equal(t, port, strconv.Itoa(svc.Port))
	require.Equal(t, api.AgentWeights{Passing: 2, Warning: 1}, svc.Weights)
	require.Equal(t, agent.Version, svc.Meta[agent.ConsulMetaVersion])
	got, complete, err := agent.DecodeConsulMeta(svc.Meta)
	require.NoError(t, err)
	require.True(t, complete)
	require.Equal(t, agent.Registration{
		ID:       "agent-1",
		Service:  "billing",
		Labels:   map[string]string{"zone": "eu-1"},
		Weight:   2,
		Capacity: 4,
		Handlers: []string{"block", "chatty", "echo", "fail", "info", "trace", "wait"},
	}, got)

	checks, err := ce.api.Agent().Checks()
	require.NoError(t, err)
	grpcCheck, ttlCheck := checks[svc.ID+agent.ConsulCheckGRPCSuffix], checks[svc.ID+agent.ConsulCheckSessionSuffix]
	require.Equal(t, "grpc", grpcCheck.Type)
	require.Equal(t, "ttl", ttlCheck.Type)

	// A session makes the TTL check pass, at once rather than at the next refresh.
	r, _ := ce.connect(1)
	entry = ce.waitEntry("the TTL check passing", func(e consulEntry) bool { return e.session.Status == api.HealthPassing })
	require.Contains(t, entry.session.Output, "in session with replica replica-a (epoch 1)")

	// Once the session has been gone for the grace period, the TTL check is critical.
	r.cancel()
	entry = ce.waitEntry("the TTL check critical", func(e consulEntry) bool { return e.session.Status == api.HealthCritical })
	require.Contains(t, entry.session.Output, "no control-plane session since")
	require.Equal(t, api.HealthPassing, entry.grpc.Status, "the agent itself is still alive")

	// Shutdown deregisters.
	ce.stopAgent()
	require.NoError(t, <-ce.agentServed)
	ce.agentServed <- nil
	require.Empty(t, entries(t, ce.api))
}

func TestConsulReregistersAfterRestart(t *testing.T) {
	t.Parallel()
	ce := setupConsul(t, nil)
	ce.waitHealthy()
	ce.connect(1)
	ce.waitEntry("the TTL check passing", func(e consulEntry) bool { return e.session.Status == api.HealthPassing })

	ce.consul.Restart() // a -dev agent comes back with an empty catalog
	entry := ce.waitEntry("the service registered again", func(e consulEntry) bool {
		return e.session.Status == api.HealthPassing && e.grpc.Status == api.HealthPassing
	})
	require.Equal(t, "agent-1", entry.service.Meta[agent.ConsulMetaAgentID])
}

func TestConsulRegistrarUnreachable(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close()) // nothing listens there now
	reg, err := agent.NewConsulRegistrar(agent.ConsulConfig{
		API: &api.Config{Address: addr, Transport: &http.Transport{}},
	})
	require.NoError(t, err)
	defer reg.Close()
	_, err = reg.Register(t.Context(), agent.Registration{
		ID: "a", Service: "s", Address: "127.0.0.1:7402", Weight: 1, Capacity: 1, TTL: 15 * time.Second,
	})
	require.ErrorContains(t, err, "register consul service tock-agent-a")
	require.ErrorContains(t, reg.Deregister(t.Context(), "a"), "deregister consul service tock-agent-a")

	_, err = reg.Register(t.Context(), agent.Registration{ID: "a", Service: "s", Address: "nowhere", TTL: time.Second})
	require.ErrorContains(t, err, `address "nowhere"`)
}

func TestConsulServiceID(t *testing.T) {
	t.Parallel()
	reg, err := agent.NewConsulRegistrar(agent.ConsulConfig{
		API: &api.Config{Address: "127.0.0.1:1", Transport: &http.Transport{}}, ServiceName: "tock-agent-blue",
	})
	require.NoError(t, err)
	defer reg.Close()
	require.Equal(t, "tock-agent-blue-web-1:7402", reg.ServiceID("web-1:7402"))
	require.Equal(t, "tock-agent-blue-a_b_c", reg.ServiceID("a/b?c"))
}
