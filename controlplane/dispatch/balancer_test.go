package dispatch

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

func handlers(names ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}

func execs(n int, handler string) []store.Execution {
	out := make([]store.Execution, n)
	for i := range out {
		out[i] = store.Execution{ID: fmt.Sprintf("e%03d", i), Handler: handler}
	}
	return out
}

func TestPickWLCFollowsWeights(t *testing.T) {
	t.Parallel()
	slots := []slot{
		{id: "a", handlers: handlers("echo"), weight: 1, free: 100},
		{id: "b", handlers: handlers("echo"), weight: 2, free: 100},
		{id: "c", handlers: handlers("echo"), weight: 3, free: 100},
	}
	got := pickWLC(execs(60, "echo"), slots)
	require.Len(t, got, 60)
	count := map[string]int{}
	for _, a := range got {
		count[a.AgentID]++
	}
	require.Equal(t, map[string]int{"a": 10, "b": 20, "c": 30}, count)
	// The input is not changed, so a retried transaction picks the same way.
	require.Equal(t, 100, slots[0].free)
}

func TestPickWLCRespectsCapacityAndEligibility(t *testing.T) {
	t.Parallel()
	slots := []slot{
		{id: "a", service: "billing", handlers: handlers("echo"), weight: 5, free: 2},
		{id: "b", service: "billing", labels: map[string]string{"zone": "eu"}, handlers: handlers("echo", "sleep"), weight: 1, free: 3},
	}
	cands := []store.Execution{
		{ID: "1", Handler: "sleep"},
		{ID: "2", Handler: "echo", Selector: map[string]string{"zone": "eu"}},
		{ID: "3", Handler: "echo", Service: "other"},
		{ID: "4", Handler: "unknown"},
		{ID: "5", Handler: "echo"},
		{ID: "6", Handler: "echo"},
		{ID: "7", Handler: "echo"},
		{ID: "8", Handler: "echo"},
	}
	got := pickWLC(cands, slots)
	byExec := map[string]string{}
	perAgent := map[string]int{}
	for _, a := range got {
		byExec[a.ExecutionID] = a.AgentID
		perAgent[a.AgentID]++
	}
	require.Equal(t, "b", byExec["1"])
	require.Equal(t, "b", byExec["2"])
	require.NotContains(t, byExec, "3")
	require.NotContains(t, byExec, "4")
	require.Equal(t, 2, perAgent["a"], "a has two free slots")
	require.Equal(t, 3, perAgent["b"], "b has three free slots")
}

func TestPickWLCPrefersIdleAgent(t *testing.T) {
	t.Parallel()
	slots := []slot{
		{id: "busy", handlers: handlers("echo"), weight: 1, free: 5, inFlight: 5},
		{id: "idle", handlers: handlers("echo"), weight: 1, free: 5},
	}
	got := pickWLC(execs(3, "echo"), slots)
	for _, a := range got {
		require.Equal(t, "idle", a.AgentID)
	}
}
