package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// newAgent returns an agent with every advertised field set.
func newAgent(id string) store.Agent {
	return store.Agent{
		ID:       id,
		Service:  "billing",
		Address:  "10.0.0.7:7070",
		Labels:   map[string]string{"zone": "eu"},
		Weight:   3,
		Capacity: 16,
		Handlers: []string{"billing/invoice", "billing/refund"},
	}
}

// listAgents returns the live agents.
func (b *bundle) listAgents(t *testing.T) []store.Agent {
	t.Helper()
	agents, err := b.st.ListAgents(b.ctx)
	require.NoError(t, err)
	return agents
}

var agentTests = []test{
	{"RegisterAndList", func(t *testing.T, b *bundle) {
		require.Empty(t, b.listAgents(t))
		before := b.now(t)
		for _, id := range []string{"b", "c", "a"} {
			require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent(id), time.Minute))
		}
		agents := b.listAgents(t)
		require.Len(t, agents, 3)
		for i, id := range []string{"a", "b", "c"} {
			got := agents[i]
			want := newAgent(id)
			require.False(t, got.LastSeen.Before(before))
			require.Equal(t, got.LastSeen.Add(time.Minute), got.ExpiresAt)
			want.LastSeen, want.ExpiresAt = got.LastSeen, got.ExpiresAt
			require.Equal(t, want, got)
		}
	}},
	{"Refresh", func(t *testing.T, b *bundle) {
		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("a"), time.Minute))
		first := b.listAgents(t)[0]
		require.NoError(t, b.st.SetAgentSession(b.ctx, "a", "replica-1"))
		b.pass(t, time.Millisecond)

		changed := newAgent("a")
		changed.Address = "10.0.0.8:7070"
		changed.Capacity = 4
		changed.Handlers = []string{"billing/invoice"}
		changed.Replica = "ignored" // the replica changes only through SetAgentSession
		require.NoError(t, b.st.RegisterAgent(b.ctx, changed, time.Hour))
		agents := b.listAgents(t)
		require.Len(t, agents, 1)
		got := agents[0]
		require.Equal(t, "10.0.0.8:7070", got.Address)
		require.Equal(t, 4, got.Capacity)
		require.Equal(t, []string{"billing/invoice"}, got.Handlers)
		require.Equal(t, "replica-1", got.Replica)
		require.True(t, got.LastSeen.After(first.LastSeen))
		require.Equal(t, got.LastSeen.Add(time.Hour), got.ExpiresAt)
	}},
	{"Expiry", func(t *testing.T, b *bundle) {
		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("short"), 5*time.Millisecond))
		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("long"), time.Hour))
		b.pass(t, 10*time.Millisecond)
		agents := b.listAgents(t)
		require.Len(t, agents, 1)
		require.Equal(t, "long", agents[0].ID)

		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("short"), time.Hour))
		require.Len(t, b.listAgents(t), 2, "registering again revives an expired agent")
	}},
	{"Deregister", func(t *testing.T, b *bundle) {
		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("a"), time.Minute))
		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("b"), time.Minute))
		require.NoError(t, b.st.DeregisterAgent(b.ctx, "a"))
		agents := b.listAgents(t)
		require.Len(t, agents, 1)
		require.Equal(t, "b", agents[0].ID)
		require.NoError(t, b.st.DeregisterAgent(b.ctx, "a"), "removing an unknown agent is not an error")
	}},
	{"Session", func(t *testing.T, b *bundle) {
		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("a"), time.Minute))
		require.Empty(t, b.listAgents(t)[0].Replica)
		require.NoError(t, b.st.SetAgentSession(b.ctx, "a", "replica-1"))
		require.Equal(t, "replica-1", b.listAgents(t)[0].Replica)
		require.NoError(t, b.st.SetAgentSession(b.ctx, "a", "replica-2"))
		require.Equal(t, "replica-2", b.listAgents(t)[0].Replica)
		require.NoError(t, b.st.SetAgentSession(b.ctx, "a", ""))
		require.Empty(t, b.listAgents(t)[0].Replica)
		require.NoError(t, b.st.SetAgentSession(b.ctx, "nope", "replica-1"), "an agent without a registration is not an error")
		require.Len(t, b.listAgents(t), 1)
	}},
	{"EndSession", func(t *testing.T, b *bundle) {
		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("a"), time.Minute))
		require.NoError(t, b.st.SetAgentSession(b.ctx, "a", "replica-2"))
		require.NoError(t, b.st.EndAgentSession(b.ctx, "a", "replica-1"))
		require.Equal(t, "replica-2", b.listAgents(t)[0].Replica, "a replica that lost the agent does not clear the new owner")
		require.NoError(t, b.st.EndAgentSession(b.ctx, "a", "replica-2"))
		require.Empty(t, b.listAgents(t)[0].Replica)
		require.NoError(t, b.st.EndAgentSession(b.ctx, "nope", "replica-1"), "an agent without a registration is not an error")
	}},
}
