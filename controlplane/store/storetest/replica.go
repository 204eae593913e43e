package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// listReplicas returns the live replicas.
func (b *bundle) listReplicas(t *testing.T) []store.Replica {
	t.Helper()
	replicas, err := b.st.ListReplicas(b.ctx)
	require.NoError(t, err)
	return replicas
}

// replicaIDs returns the replicas' ids in order.
func replicaIDs(replicas []store.Replica) []string {
	out := make([]string, len(replicas))
	for i, r := range replicas {
		out[i] = r.ID
	}
	return out
}

var replicaTests = []test{
	{"RegisterAndList", func(t *testing.T, b *bundle) {
		require.Empty(t, b.listReplicas(t))
		before := b.now(t)
		for _, id := range []string{"tockd-b", "tockd-c", "tockd-a"} {
			require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: id, Address: id + ":7400"}, time.Minute))
		}
		replicas := b.listReplicas(t)
		require.Equal(t, []string{"tockd-a", "tockd-b", "tockd-c"}, replicaIDs(replicas))
		for _, r := range replicas {
			require.Equal(t, r.ID+":7400", r.Address)
			require.False(t, r.LastSeen.Before(before), "the database clock stamps the registration")
			require.Equal(t, r.LastSeen.Add(time.Minute), r.ExpiresAt)
		}
	}},
	{"Refresh", func(t *testing.T, b *bundle) {
		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "r", Address: "10.0.0.1:7400"}, time.Minute))
		first := b.listReplicas(t)[0]
		b.pass(t, time.Millisecond)
		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "r", Address: "10.0.0.2:7400"}, time.Hour))
		replicas := b.listReplicas(t)
		require.Len(t, replicas, 1)
		got := replicas[0]
		require.Equal(t, "10.0.0.2:7400", got.Address)
		require.True(t, got.LastSeen.After(first.LastSeen))
		require.Equal(t, got.LastSeen.Add(time.Hour), got.ExpiresAt)
	}},
	{"Expiry", func(t *testing.T, b *bundle) {
		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "short"}, 5*time.Millisecond))
		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "long"}, time.Hour))
		b.pass(t, 10*time.Millisecond)
		require.Equal(t, []string{"long"}, replicaIDs(b.listReplicas(t)))
		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "short"}, time.Hour))
		require.Equal(t, []string{"long", "short"}, replicaIDs(b.listReplicas(t)), "registering again revives a replica")
	}},
	{"Deregister", func(t *testing.T, b *bundle) {
		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "a"}, time.Minute))
		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "b"}, time.Minute))
		require.NoError(t, b.st.DeregisterReplica(b.ctx, "a"))
		require.Equal(t, []string{"b"}, replicaIDs(b.listReplicas(t)))
		require.NoError(t, b.st.DeregisterReplica(b.ctx, "a"), "removing an unknown replica is not an error")
	}},
	{"PruneRegistrations", func(t *testing.T, b *bundle) {
		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "gone"}, time.Millisecond))
		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "live"}, time.Hour))
		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("gone"), time.Millisecond))
		require.NoError(t, b.st.RegisterAgent(b.ctx, newAgent("live"), time.Hour))
		b.pass(t, 20*time.Millisecond)

		n, err := b.st.PruneRegistrations(b.ctx, time.Hour)
		require.NoError(t, err)
		require.Zero(t, n, "expired, but not for long enough")
		n, err = b.st.PruneRegistrations(b.ctx, 5*time.Millisecond)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		n, err = b.st.PruneRegistrations(b.ctx, 0)
		require.NoError(t, err)
		require.Zero(t, n)
		require.Equal(t, []string{"live"}, replicaIDs(b.listReplicas(t)))
		require.Len(t, b.listAgents(t), 1)

		require.NoError(t, b.st.RegisterReplica(b.ctx, store.Replica{ID: "gone"}, time.Hour))
		require.Len(t, b.listReplicas(t), 2, "a pruned replica registers again")
	}},
}
