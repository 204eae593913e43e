package dispatch

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// routed returns n executions of job with the strategy.
func routed(n int, job string, strategy store.RoutingStrategy) []store.Execution {
	out := execs(n, "echo")
	for i := range out {
		out[i].ID = fmt.Sprintf("%s-%03d", job, i)
		out[i].Job = job
		out[i].Route.Strategy = strategy
	}
	return out
}

// agents returns idle agents serving echo, each with a weight and 100 free slots.
func agents(weights map[string]int) []slot {
	out := make([]slot, 0, len(weights))
	for id, w := range weights {
		out = append(out, slot{id: id, handlers: handlers("echo"), weight: w, free: 100})
	}
	return out
}

// sequence is the agents of the assignments, in order, joined.
func sequence(as []store.Assignment) string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.AgentID
	}
	return strings.Join(ids, " ")
}

func counts(as []store.Assignment) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		out[a.AgentID]++
	}
	return out
}

func TestStrategies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		slots  []slot
		state  placementState
		cands  []store.Execution
		want   string         // the agents in order, when the order is the rule
		counts map[string]int // how many each agent gets, when that is the rule
	}{
		{
			name:   "weighted least connections follows the weights",
			slots:  agents(map[string]int{"a": 1, "b": 2, "c": 3}),
			cands:  routed(60, "j", ""),
			counts: map[string]int{"a": 10, "b": 20, "c": 30},
		},
		{
			name: "weighted least connections counts what is in flight per unit of weight",
			slots: []slot{
				{id: "a", handlers: handlers("echo"), weight: 1, free: 10, inFlight: 1},
				{id: "b", handlers: handlers("echo"), weight: 4, free: 10, inFlight: 3},
			},
			cands: routed(2, "j", store.RouteWeightedLeastConnections),
			want:  "b b", // (3+1)/4 = 1 < (1+1)/1, then (4+1)/4 < 2
		},
		{
			name: "weighted least connections keeps work from an agent well ahead on load",
			slots: []slot{
				{id: "a", handlers: handlers("echo"), weight: 3, free: 10, inFlight: 6},
				{id: "b", handlers: handlers("echo"), weight: 1, free: 10},
			},
			cands: routed(5, "j", ""),
			want:  "b b a a b", // b catches up to a's 2 per unit of weight, then they take turns 3:1
		},
		{
			name:   "least connections ignores the weights",
			slots:  agents(map[string]int{"a": 1, "b": 2, "c": 3}),
			cands:  routed(60, "j", store.RouteLeastConnections),
			counts: map[string]int{"a": 20, "b": 20, "c": 20},
		},
		{
			name: "least connections prefers the fewest in flight",
			slots: []slot{
				{id: "a", handlers: handlers("echo"), weight: 1, free: 10, inFlight: 2},
				{id: "b", handlers: handlers("echo"), weight: 9, free: 10, inFlight: 4},
			},
			cands: routed(3, "j", store.RouteLeastConnections),
			want:  "a a b", // 2 < 4, 3 < 4, then 4 = 4 and a was assigned more
		},
		{
			name:  "round robin takes the agents in turn",
			slots: agents(map[string]int{"a": 1, "b": 5, "c": 1}),
			cands: routed(7, "j", store.RouteRoundRobin),
			want:  "a b c a b c a",
		},
		{
			name:  "round robin goes on from the job's last agent",
			slots: agents(map[string]int{"a": 1, "b": 1, "c": 1}),
			state: placementState{roundRobin: map[string]string{"j": "b"}},
			cands: routed(4, "j", store.RouteRoundRobin),
			want:  "c a b c",
		},
		{
			name:  "round robin goes on past an agent that left",
			slots: agents(map[string]int{"a": 1, "c": 1, "d": 1}),
			state: placementState{roundRobin: map[string]string{"j": "b"}},
			cands: routed(3, "j", store.RouteRoundRobin),
			want:  "c d a",
		},
		{
			name:  "round robin turns per job",
			slots: agents(map[string]int{"a": 1, "b": 1}),
			state: placementState{roundRobin: map[string]string{"j": "a"}},
			cands: append(routed(2, "j", store.RouteRoundRobin), routed(2, "k", store.RouteRoundRobin)...),
			want:  "b a a b",
		},
		{
			name:  "smooth weighted round robin spreads the heavy agent's turns",
			slots: agents(map[string]int{"a": 5, "b": 1, "c": 1}),
			cands: routed(7, "j", store.RouteWeightedRoundRobin),
			want:  "a a b a c a a", // nginx's example
		},
		{
			name:   "weighted round robin follows the weights",
			slots:  agents(map[string]int{"a": 1, "b": 2, "c": 3}),
			cands:  routed(60, "j", store.RouteWeightedRoundRobin),
			counts: map[string]int{"a": 10, "b": 20, "c": 30},
		},
		{
			name: "a full agent is skipped",
			slots: []slot{
				{id: "a", handlers: handlers("echo"), weight: 1, free: 1},
				{id: "b", handlers: handlers("echo"), weight: 1, free: 3},
			},
			cands:  routed(10, "j", store.RouteRoundRobin),
			counts: map[string]int{"a": 1, "b": 3},
		},
		{
			name:  "a pinned execution goes to its agent only",
			slots: agents(map[string]int{"a": 1, "b": 1, "c": 1}),
			cands: []store.Execution{
				{ID: "1", Handler: "echo", Route: store.Route{Routing: store.Routing{Strategy: store.RouteBroadcast}, PinnedAgent: "c"}},
				{ID: "2", Handler: "echo", Route: store.Route{Routing: store.Routing{Strategy: store.RouteBroadcast}, PinnedAgent: "gone"}},
				{ID: "3", Handler: "echo", Route: store.Route{Routing: store.Routing{Strategy: store.RouteBroadcast}, PinnedAgent: "c"}},
			},
			want: "c c",
		},
		{
			name:  "shards are placed by weighted least connections",
			slots: agents(map[string]int{"a": 1, "b": 1}),
			cands: func() []store.Execution {
				out := routed(4, "j", store.RouteSharding)
				for i := range out {
					out[i].Route.ShardIndex, out[i].Route.ShardTotal = i, 4
				}
				return out
			}(),
			counts: map[string]int{"a": 2, "b": 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPlacement(tc.slots, nil, tc.state, 1)
			got := p.pick(tc.cands)
			if tc.want != "" {
				require.Equal(t, tc.want, sequence(got))
			}
			if tc.counts != nil {
				require.Equal(t, tc.counts, counts(got))
			}
			// The placement is pure: the same input decides the same way.
			again := newPlacement(tc.slots, nil, tc.state, 1).pick(tc.cands)
			require.Equal(t, got, again)
		})
	}
}

func TestRandomIsSeededAndSpreads(t *testing.T) {
	t.Parallel()
	slots := agents(map[string]int{"a": 1, "b": 1, "c": 1})
	for i := range slots {
		slots[i].free = 1000
	}
	cands := routed(3000, "j", store.RouteRandom)
	got := newPlacement(slots, nil, placementState{}, 42).pick(cands)
	require.Equal(t, got, newPlacement(slots, nil, placementState{}, 42).pick(cands), "the same seed picks the same")
	require.NotEqual(t, sequence(got), sequence(newPlacement(slots, nil, placementState{}, 43).pick(cands)))
	for id, n := range counts(got) {
		require.InDelta(t, 1000, n, 100, "agent %s", id)
	}
}

func TestConsistentHash(t *testing.T) {
	t.Parallel()
	keyed := func(key string) []store.Execution {
		e := routed(1, "j", store.RouteConsistentHash)
		e[0].Route.HashKey = key
		return e
	}
	own := agents(map[string]int{"a": 1, "b": 1, "c": 1, "d": 1, "e": 1})
	placeOn := func(slots []slot, peers []peer, key string) string {
		return sequence(newPlacement(slots, peers, placementState{}, 0).pick(keyed(key)))
	}

	// Stable while the agents are the same; keys spread over the agents.
	spread := map[string]int{}
	for k := range 200 {
		key := fmt.Sprintf("customer-%d", k)
		first := placeOn(own, nil, key)
		require.NotEmpty(t, first)
		require.Equal(t, first, placeOn(own, nil, key))
		spread[first]++

		// An agent other than the key's leaving moves nothing; the key's own leaving moves
		// only it.
		var without []slot
		for _, s := range own {
			if s.id != first {
				without = append(without, s)
			}
		}
		moved := placeOn(without, nil, key)
		require.NotEqual(t, first, moved)
		for _, s := range own {
			if s.id == first || s.id == moved {
				continue
			}
			var others []slot
			for _, o := range own {
				if o.id != s.id {
					others = append(others, o)
				}
			}
			require.Equal(t, first, placeOn(others, nil, key), "removing %s moved key %s", s.id, key)
		}
	}
	require.Len(t, spread, 5)

	// With no key, the job's name is the key.
	noKey := keyed("")
	require.Equal(t, placeOn(own, nil, "j"), sequence(newPlacement(own, nil, placementState{}, 0).pick(noKey)))

	// Agents of other replicas rank too: a key that ranks one first waits for its owner.
	key := "customer-7"
	top := placeOn(own, nil, key)
	var mine []slot
	var peers []peer
	for _, s := range own {
		if s.id == top {
			peers = append(peers, peer{id: s.id, handlers: handlers("echo")})
			continue
		}
		mine = append(mine, s)
		peers = append(peers, peer{id: s.id, handlers: handlers("echo"), own: true})
	}
	require.Empty(t, placeOn(mine, peers, key), "another replica's agent ranks first")
	// A peer discovery knows nothing of, or that does not serve the handler, does not rank.
	peers = append(peers[:0:0], peer{id: top, handlers: handlers("other")})
	require.NotEmpty(t, placeOn(mine, peers, key))

	// A full top agent is waited for, not passed over.
	full := append([]slot(nil), own...)
	for i := range full {
		if full[i].id == top {
			full[i].free = 0
		}
	}
	require.Empty(t, placeOn(full, nil, key))
}

func TestNeverBeyondCapacity(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 300 {
		var slots []slot
		for i := range 1 + rng.IntN(5) {
			slots = append(slots, slot{
				id:       fmt.Sprintf("agent-%d", i),
				handlers: handlers("echo"),
				weight:   1 + rng.IntN(5),
				free:     rng.IntN(4),
				inFlight: rng.IntN(4),
			})
		}
		var cands []store.Execution
		for i := range rng.IntN(40) {
			s := store.RoutingStrategies[rng.IntN(len(store.RoutingStrategies))]
			e := store.Execution{ID: fmt.Sprintf("e%03d", i), Job: fmt.Sprintf("job-%d", rng.IntN(3)), Handler: "echo",
				Priority: rng.IntN(3), Route: store.Route{Routing: store.Routing{Strategy: s}}}
			if s == store.RouteBroadcast {
				e.Route.PinnedAgent = fmt.Sprintf("agent-%d", rng.IntN(5))
			}
			cands = append(cands, e)
		}
		got := newPlacement(slots, nil, placementState{}, uint64(round)).pick(cands)
		per := counts(got)
		seen := map[string]bool{}
		for _, a := range got {
			require.False(t, seen[a.ExecutionID], "round %d: %s placed twice", round, a.ExecutionID)
			seen[a.ExecutionID] = true
		}
		for _, s := range slots {
			require.LessOrEqual(t, per[s.id], s.free, "round %d: agent %s over its free capacity", round, s.id)
		}
	}
}

func TestFanOut(t *testing.T) {
	t.Parallel()
	slots := []slot{
		{id: "own-b", service: "billing", handlers: handlers("echo"), weight: 1, free: 0}, // full still counts
		{id: "own-a", service: "billing", handlers: handlers("echo"), weight: 1, free: 2},
		{id: "own-x", service: "billing", handlers: handlers("other"), weight: 1, free: 2},
	}
	peers := []peer{
		{id: "own-a", service: "billing", handlers: handlers("echo"), own: true},
		{id: "own-gone", service: "billing", handlers: handlers("echo"), own: true}, // not ready here
		{id: "far-a", service: "billing", handlers: handlers("echo")},
		{id: "far-b", service: "shipping", handlers: handlers("echo")},
		{id: "far-c", service: "billing"}, // handlers unknown
	}
	p := newPlacement(slots, peers, placementState{}, 0)

	broadcast := store.Routing{Strategy: store.RouteBroadcast}
	e := store.Execution{ID: "1", Handler: "echo", Service: "billing", Route: store.Route{Routing: broadcast}}
	require.Equal(t, []store.Route{
		{Routing: broadcast, PinnedAgent: "far-a"},
		{Routing: broadcast, PinnedAgent: "own-a"},
		{Routing: broadcast, PinnedAgent: "own-b"},
	}, p.fanOut(e))
	e.Handler = "nothing-serves-this"
	require.Empty(t, p.fanOut(e))

	sharding := store.Routing{Strategy: store.RouteSharding, Shards: 3}
	routes := p.fanOut(store.Execution{ID: "2", Handler: "echo", Route: store.Route{Routing: sharding}})
	require.Equal(t, []store.Route{
		{Routing: sharding, ShardIndex: 0, ShardTotal: 3},
		{Routing: sharding, ShardIndex: 1, ShardTotal: 3},
		{Routing: sharding, ShardIndex: 2, ShardTotal: 3},
	}, routes)
	for _, r := range routes {
		require.False(t, r.FansOut())
	}
	one := p.fanOut(store.Execution{ID: "3", Handler: "echo", Route: store.Route{Routing: store.Routing{Strategy: store.RouteSharding}}})
	require.Equal(t, []store.Route{{Routing: store.Routing{Strategy: store.RouteSharding}, ShardIndex: 0, ShardTotal: 1}}, one)
	require.Nil(t, p.fanOut(store.Execution{ID: "4", Handler: "echo"}))
}

func TestOrderShortestExpectedFirst(t *testing.T) {
	t.Parallel()
	sejf := func(id string, prio int, d time.Duration) store.Execution {
		return store.Execution{ID: id, Priority: prio, ExpectedDuration: d,
			Route: store.Route{Routing: store.Routing{Strategy: store.RouteShortestExpectedJobFirst}}}
	}
	plain := func(id string, prio int) store.Execution { return store.Execution{ID: id, Priority: prio} }
	for _, tc := range []struct {
		name  string
		cands []store.Execution
		want  string
	}{
		{"plain candidates keep the store's order", []store.Execution{plain("a", 0), plain("b", 0), plain("c", 0)}, "a b c"},
		{"priority first", []store.Execution{plain("low", 0), plain("high", 5), sejf("short", 0, time.Millisecond)}, "high low short"},
		{
			"shortest first among their own places",
			[]store.Execution{sejf("slow", 0, time.Minute), plain("p", 0), sejf("fast", 0, time.Second), sejf("mid", 0, 10*time.Second)},
			"fast p mid slow",
		},
		{
			"unknown durations after known ones",
			[]store.Execution{sejf("new", 0, 0), sejf("known", 0, time.Hour)},
			"known new",
		},
		{
			"within each priority",
			[]store.Execution{sejf("h-slow", 1, time.Minute), sejf("h-fast", 1, time.Second), sejf("l-fast", 0, time.Millisecond)},
			"h-fast h-slow l-fast",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ids []string
			for _, i := range order(tc.cands) {
				ids = append(ids, tc.cands[i].ID)
			}
			require.Equal(t, tc.want, strings.Join(ids, " "))
		})
	}
}

func TestShortestExpectedFirstWhenScarce(t *testing.T) {
	t.Parallel()
	slots := []slot{{id: "a", handlers: handlers("echo"), weight: 1, free: 2}}
	var cands []store.Execution
	for i, d := range []time.Duration{time.Minute, time.Hour, time.Second, 10 * time.Second} {
		cands = append(cands, store.Execution{ID: fmt.Sprint(i), Handler: "echo", ExpectedDuration: d,
			Route: store.Route{Routing: store.Routing{Strategy: store.RouteShortestExpectedJobFirst}}})
	}
	got := newPlacement(slots, nil, placementState{}, 0).pick(cands)
	require.Len(t, got, 2)
	require.Equal(t, "2", got[0].ExecutionID, "the 1s job first")
	require.Equal(t, "3", got[1].ExecutionID, "then the 10s one")
}

// TestWeightedLeastConnectionsShares runs executions of equal length through the placement as
// the dispatcher does, one claim per arrival with departures in between, at several loads
// below capacity: each agent runs its weight's share, within 5%.
func TestWeightedLeastConnectionsShares(t *testing.T) {
	t.Parallel()
	for _, inFlight := range []int{6, 9, 12, 15, 18} {
		t.Run(fmt.Sprint(inFlight), func(t *testing.T) {
			t.Parallel()
			weights := map[string]int{"a": 1, "b": 2, "c": 3}
			rng := rand.New(rand.NewPCG(uint64(inFlight), 1))
			const total, capacity = 1200, 10
			var (
				state   placementState
				running = map[string][]float64{} // agent → end times
				done    = map[string]int{}
				now     float64
			)
			for i := range total {
				now += (0.8 + 0.4*rng.Float64()) / float64(inFlight) // a run lasts about 1
				var slots []slot
				for id, w := range weights {
					running[id] = slices.DeleteFunc(running[id], func(end float64) bool { return end <= now })
					slots = append(slots, slot{id: id, handlers: handlers("echo"), weight: w,
						free: capacity - len(running[id]), inFlight: len(running[id])})
				}
				p := newPlacement(slots, nil, state, 0)
				got := p.pick(routed(1, fmt.Sprint(i), ""))
				require.Len(t, got, 1)
				state = p.state
				id := got[0].AgentID
				running[id] = append(running[id], now+0.95+0.1*rng.Float64())
				done[id]++
			}
			for id, w := range weights {
				want := float64(total*w) / 6
				require.InDelta(t, want, done[id], want*0.05, "agent %s (weight %d): %v", id, w, done)
			}
		})
	}
}
