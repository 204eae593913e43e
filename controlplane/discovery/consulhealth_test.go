package discovery

import (
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
	"github.com/stretchr/testify/require"
)

// agentEntry is a tock-agent's health entry as Consul returns it, with its checks' statuses.
func agentEntry(node, grpc, session, sessionOutput string) *api.ServiceEntry {
	const sid = "tock-agent-a1"
	e := &api.ServiceEntry{
		Node: &api.Node{Node: "n1", Address: "10.0.0.7"},
		Service: &api.AgentService{ID: sid, Service: "tock-agent", Port: 7402, Meta: map[string]string{
			"tock_agent_id": "a1", "tock_service": "billing", "tock_weight": "3", "tock_capacity": "10",
			"tock_labels": `{"zone":"eu"}`, "tock_handlers": "echo,sl%2Ceep",
		}},
	}
	add := func(id, serviceID, status, output string) {
		if status != "" {
			e.Checks = append(e.Checks, &api.HealthCheck{CheckID: id, ServiceID: serviceID, Status: status, Output: output})
		}
	}
	add("serfHealth", "", node, "")
	add(sid+":grpc", sid, grpc, "")
	add(sid+":session", sid, session, sessionOutput)
	return e
}

func TestAgentLive(t *testing.T) {
	t.Parallel()
	const (
		pass = api.HealthPassing
		warn = api.HealthWarning
		crit = api.HealthCritical
	)
	for _, tc := range []struct {
		name                string
		node, grpc, session string
		output              string
		live                bool
	}{
		{"all passing", pass, pass, pass, "in session with replica r1", true},
		{"waiting for its first session", pass, pass, crit, "waiting for a control-plane replica to open a session", true},
		{"between sessions", pass, pass, crit, "no control-plane session since 2026-01-01T00:00:00Z", true},
		{"local service down", pass, pass, crit, "the local service at 127.0.0.1:7403 is unreachable", true},
		{"session check expired: the gRPC check tells", pass, pass, crit, "TTL expired", true},
		{"hung: both critical", pass, crit, crit, "TTL expired", false},
		{"draining or dead: gRPC check critical", pass, crit, pass, "", false},
		{"gRPC check warning", pass, warn, pass, "", false},
		{"node down", crit, pass, pass, "", false},
		{"no checks of its own", pass, "", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.live, agentLive(agentEntry(tc.node, tc.grpc, tc.session, tc.output)))
		})
	}
	// Maintenance mode adds a critical check of its own.
	e := agentEntry(pass, pass, pass, "")
	e.Checks = append(e.Checks, &api.HealthCheck{CheckID: "_service_maintenance:tock-agent-a1", ServiceID: "tock-agent-a1", Status: crit})
	require.False(t, agentLive(e))
	// Another service's checks on the node do not count.
	e = agentEntry(pass, pass, pass, "")
	e.Checks = append(e.Checks, &api.HealthCheck{CheckID: "web", ServiceID: "web-1", Status: crit})
	require.True(t, agentLive(e))
	require.False(t, agentLive(nil))
	require.False(t, agentLive(&api.ServiceEntry{}))
}

func TestAgentFromEntry(t *testing.T) {
	t.Parallel()
	e := agentEntry(api.HealthPassing, api.HealthPassing, api.HealthPassing, "")
	a, err := agentFromEntry(e)
	require.NoError(t, err)
	require.Equal(t, Agent{
		ID: "a1", Service: "billing", Address: "10.0.0.7:7402", Labels: map[string]string{"zone": "eu"},
		Weight: 3, Capacity: 10, Handlers: []string{"echo", "sl,eep"},
	}, a, "the node's address stands in for the service's")

	e.Service.Address = "192.168.1.2"
	e.Service.Meta["tock_handlers_truncated"] = "true"
	a, err = agentFromEntry(e)
	require.NoError(t, err)
	require.Equal(t, "192.168.1.2:7402", a.Address)
	require.Nil(t, a.Handlers, "truncated handlers are unknown, not a partial list")

	e.Service.Meta["tock_weight"] = "heavy"
	_, err = agentFromEntry(e)
	require.ErrorContains(t, err, "tock_weight")
	delete(e.Service.Meta, "tock_agent_id")
	_, err = agentFromEntry(e)
	require.Error(t, err)
}

func TestReplicas(t *testing.T) {
	t.Parallel()
	entry := func(id, status string) *api.ServiceEntry {
		sid := consulServiceID("tock-replica", id)
		return &api.ServiceEntry{
			Node:    &api.Node{Address: "10.0.0.1"},
			Service: &api.AgentService{ID: sid, Address: "10.0.0.9", Port: 7400, Meta: map[string]string{MetaReplicaID: id}},
			Checks: api.HealthChecks{
				{CheckID: "serfHealth", Status: api.HealthPassing},
				{CheckID: sid + ":ttl", ServiceID: sid, Status: status},
			},
		}
	}
	anonymous := entry("x", api.HealthPassing)
	delete(anonymous.Service.Meta, MetaReplicaID)
	got := liveReplicas([]*api.ServiceEntry{
		entry("r1", api.HealthPassing), entry("r2 with/odd chars", api.HealthPassing),
		entry("r3", api.HealthCritical), anonymous,
	})
	require.Equal(t, map[string]Replica{
		"r1":                {ID: "r1", Address: "10.0.0.9:7400"},
		"r2 with/odd chars": {ID: "r2 with/odd chars", Address: "10.0.0.9:7400"},
	}, got)
	require.Equal(t, "tock-replica-r2_with_odd_chars", consulServiceID("tock-replica", "r2 with/odd chars"))
	require.False(t, strings.ContainsAny(consulServiceID("s", "a b/c?"), " /?"))
}
