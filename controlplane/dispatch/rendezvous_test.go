package dispatch_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/dispatch"
)

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func owners(agents, replicas []string) map[string]string {
	out := make(map[string]string, len(agents))
	for _, a := range agents {
		out[a] = dispatch.Owner(a, replicas)
	}
	return out
}

func TestOwnerStable(t *testing.T) {
	t.Parallel()
	require.Empty(t, dispatch.Owner("agent", nil), "no replica, no owner")
	require.Equal(t, "only", dispatch.Owner("agent", []string{"only"}))

	replicas := []string{"tockd-a", "tockd-b", "tockd-c"}
	agents := names("agent", 100)
	first := owners(agents, replicas)
	reversed := slices.Clone(replicas)
	slices.Reverse(reversed)
	require.Equal(t, first, owners(agents, reversed), "the order of the replicas does not matter")
	require.Equal(t, first, owners(agents, replicas), "the same set gives the same owners")
	for a, r := range first {
		require.Contains(t, replicas, r, a)
	}
}

func TestOwnerBalanced(t *testing.T) {
	t.Parallel()
	replicas := names("tockd", 5)
	agents := names("web", 5000)
	count := map[string]int{}
	for _, r := range owners(agents, replicas) {
		count[r]++
	}
	require.Len(t, count, len(replicas))
	for r, n := range count {
		// 1000 expected each; a binomial's standard deviation here is about 28.
		require.InDelta(t, 1000, n, 150, "replica %s owns %d of 5000", r, n)
	}
}

func TestOwnerMinimalMovement(t *testing.T) {
	t.Parallel()
	replicas := names("tockd", 4)
	agents := names("agent", 2000)
	before := owners(agents, replicas)

	// A replica leaves: only its agents move, and they spread over the others.
	gone := replicas[1]
	after := owners(agents, slices.Delete(slices.Clone(replicas), 1, 2))
	moved := map[string]int{}
	for _, a := range agents {
		if before[a] != gone {
			require.Equal(t, before[a], after[a], "agent %s did not belong to the replica that left", a)
			continue
		}
		require.NotEqual(t, gone, after[a])
		moved[after[a]]++
	}
	require.Len(t, moved, 3, "the leaver's agents spread over every other replica")

	// A replica joins: agents move only to it, about a fifth of them.
	joined := owners(agents, append(slices.Clone(replicas), "tockd-new"))
	n := 0
	for _, a := range agents {
		if joined[a] != before[a] {
			require.Equal(t, "tockd-new", joined[a])
			n++
		}
	}
	require.InDelta(t, len(agents)/5, n, 100)
}
