package discovery_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tockhq/tock/agent"
	"github.com/tockhq/tock/controlplane/discovery"
	"github.com/tockhq/tock/tools/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// consulWait bounds waits on Consul: checks run every second, and a restart takes a few.
const consulWait = 30 * time.Second

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeAgent is what Consul sees of a tock-agent: a gRPC health service, registered the way
// tock-agent registers itself (agent.ConsulRegistrar).
type fakeAgent struct {
	health *health.Server
	reg    *agent.ConsulRegistrar
	r      agent.Registration
}

func startFakeAgent(t *testing.T, consulAddr, id string) *fakeAgent {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	tr := &http.Transport{}
	reg, err := agent.NewConsulRegistrar(agent.ConsulConfig{
		API:           &api.Config{Address: consulAddr, Transport: tr},
		CheckInterval: time.Second,
		Logger:        quiet(),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Stop()
		<-served
		reg.Close()
		tr.CloseIdleConnections()
	})
	return &fakeAgent{health: hs, reg: reg, r: agent.Registration{
		ID: id, Service: "billing", Address: lis.Addr().String(), Labels: map[string]string{"zone": "eu"},
		Weight: 2, Capacity: 5, Handlers: []string{"echo", "sleep"}, TTL: 2 * time.Second,
		Status: "waiting for a control-plane replica to open a session",
	}}
}

func (a *fakeAgent) register(t *testing.T) {
	t.Helper()
	_, err := a.reg.Register(t.Context(), a.r)
	require.NoError(t, err)
}

func newConsul(t *testing.T, addr string) *discovery.Consul {
	t.Helper()
	c, err := discovery.NewConsul(discovery.ConsulConfig{
		API:           &api.Config{Address: addr, Transport: &http.Transport{}},
		Wait:          2 * time.Second,
		RecoveryGrace: 8 * time.Second,
		BackoffMin:    50 * time.Millisecond,
		BackoffMax:    500 * time.Millisecond,
		Logger:        quiet(),
	})
	require.NoError(t, err)
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	return c
}

func agentIDs(t *testing.T, c *discovery.Consul) []string {
	t.Helper()
	agents, err := c.Agents(t.Context())
	if err != nil {
		return nil
	}
	var ids []string
	for _, a := range agents {
		ids = append(ids, a.ID)
	}
	return ids
}

func replicaIDs(t *testing.T, c *discovery.Consul) []string {
	t.Helper()
	rs, err := c.Replicas(t.Context())
	if err != nil {
		return nil
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestConsul runs discovery against a real Consul agent: agents registered the way
// tock-agent registers, replicas registering themselves, checks turning critical, and a
// restart of Consul that loses everything.
func TestConsul(t *testing.T) {
	t.Parallel()
	consul := testenv.Consul(t)
	a1 := startFakeAgent(t, consul.HTTPAddr, "a1")
	a2 := startFakeAgent(t, consul.HTTPAddr, "a2")
	a1.register(t)
	a2.register(t)
	r1, r2 := newConsul(t, consul.HTTPAddr), newConsul(t, consul.HTTPAddr)
	client := consulClient(t, consul.HTTPAddr)

	// Agents show once Consul's gRPC check of them passes, although no replica holds a
	// session with them yet (their session check is critical until one does).
	require.Eventually(t, func() bool {
		return slices.Equal(agentIDs(t, r1), []string{"a1", "a2"}) && slices.Equal(agentIDs(t, r2), []string{"a1", "a2"})
	}, consulWait, 10*time.Millisecond)
	agents, err := r1.Agents(t.Context())
	require.NoError(t, err)
	require.Equal(t, discovery.Agent{
		ID: "a1", Service: "billing", Address: a1.r.Address, Labels: map[string]string{"zone": "eu"},
		Weight: 2, Capacity: 5, Handlers: []string{"echo", "sleep"},
	}, agents[0])

	// Replicas register with a TTL check and see each other.
	require.NoError(t, r1.RegisterReplica(t.Context(), discovery.Replica{ID: "replica-1", Address: "127.0.0.1:7400"}, 3*time.Second))
	require.NoError(t, r2.RegisterReplica(t.Context(), discovery.Replica{ID: "replica-2", Address: "127.0.0.1:7410"}, 3*time.Second))
	require.Eventually(t, func() bool {
		return slices.Equal(replicaIDs(t, r1), []string{"replica-1", "replica-2"}) &&
			slices.Equal(replicaIDs(t, r2), []string{"replica-1", "replica-2"})
	}, consulWait, 10*time.Millisecond)
	replicas, err := r2.Replicas(t.Context())
	require.NoError(t, err)
	require.Equal(t, discovery.Replica{ID: "replica-1", Address: "127.0.0.1:7400"}, replicas[0])

	// An agent that drains (its gRPC health says NOT_SERVING) goes; it comes back once it
	// serves again.
	a2.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	require.Eventually(t, func() bool { return slices.Equal(agentIDs(t, r1), []string{"a1"}) }, consulWait, 10*time.Millisecond)
	a2.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	require.Eventually(t, func() bool { return slices.Equal(agentIDs(t, r1), []string{"a1", "a2"}) }, consulWait, 10*time.Millisecond)

	// Its session check does not count: expired (the agent stopped refreshing it) or
	// critical with a reason, the agent stays while its gRPC check passes.
	a1.r.Ready, a1.r.Status = true, "in session with replica replica-1"
	a1.register(t)
	require.Eventually(t, func() bool {
		checks, _, err := client.Health().Checks("tock-agent", nil)
		if err != nil {
			return false
		}
		for _, c := range checks {
			if c.CheckID == "tock-agent-a1:session" && c.Status == api.HealthCritical {
				return true
			}
		}
		return false
	}, consulWait, 10*time.Millisecond, "a1's session check expires")
	require.Equal(t, []string{"a1", "a2"}, agentIDs(t, r1))

	// Registrations that lapse go: the replicas' TTL checks ran out meanwhile.
	require.Eventually(t, func() bool { return len(replicaIDs(t, r1)) == 0 }, consulWait, 10*time.Millisecond)
	require.NoError(t, r1.RegisterReplica(t.Context(), discovery.Replica{ID: "replica-1", Address: "127.0.0.1:7400"}, time.Minute))
	require.NoError(t, r2.RegisterReplica(t.Context(), discovery.Replica{ID: "replica-2", Address: "127.0.0.1:7410"}, time.Minute))
	require.Eventually(t, func() bool {
		return slices.Equal(replicaIDs(t, r1), []string{"replica-1", "replica-2"}) &&
			slices.Equal(replicaIDs(t, r2), []string{"replica-1", "replica-2"})
	}, consulWait, 10*time.Millisecond)

	// A -dev Consul restarts empty: the watches keep what they knew, and the agents and
	// replicas register again.
	consul.Stop()
	_, err = r1.Agents(t.Context())
	require.NoError(t, err, "an unreachable Consul is no error once it answered")
	require.Equal(t, []string{"a1", "a2"}, agentIDs(t, r1))
	require.Equal(t, []string{"replica-1", "replica-2"}, replicaIDs(t, r1))
	err = r1.RegisterReplica(t.Context(), discovery.Replica{ID: "replica-1", Address: "127.0.0.1:7400"}, 3*time.Second)
	require.ErrorIs(t, err, discovery.ErrUnavailable)
	consul.Restart()
	// Until the others register again, nothing shows but what was known.
	require.NoError(t, r1.RegisterReplica(t.Context(), discovery.Replica{ID: "replica-1", Address: "127.0.0.1:7400"}, time.Minute))
	require.Eventually(t, func() bool {
		entries, _, err := client.Health().Service("tock-replica", "", true, nil)
		return err == nil && len(entries) == 1
	}, consulWait, 10*time.Millisecond, "replica-1 registered again")
	require.Equal(t, []string{"a1", "a2"}, agentIDs(t, r1))
	require.Equal(t, []string{"a1", "a2"}, agentIDs(t, r2))
	require.Equal(t, []string{"replica-1", "replica-2"}, replicaIDs(t, r2))
	a1.register(t)
	a2.register(t)
	require.NoError(t, r2.RegisterReplica(t.Context(), discovery.Replica{ID: "replica-2", Address: "127.0.0.1:7410"}, time.Minute))
	require.Eventually(t, func() bool {
		entries, _, err := client.Health().Service("tock-agent", "", false, nil)
		return err == nil && len(entries) == 2
	}, consulWait, 10*time.Millisecond, "the agents registered again")
	require.Eventually(t, func() bool { return slices.Equal(agentIDs(t, r1), []string{"a1", "a2"}) }, consulWait, 10*time.Millisecond)

	// A replica that leaves deregisters: the others drop it at once (outside the recovery
	// window; inside, it stays until the window ends).
	require.NoError(t, r2.DeregisterReplica(t.Context(), "replica-2"))
	require.Eventually(t, func() bool { return slices.Equal(replicaIDs(t, r1), []string{"replica-1"}) }, consulWait, 10*time.Millisecond)
	require.NoError(t, r2.DeregisterReplica(t.Context(), "replica-2"), "deregistering twice is no error")
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
