package store

import "time"

// This file holds how an execution's agent is chosen: the routing a job carries, and the
// route each of its executions keeps from it.

// RoutingStrategy is how an agent is chosen for a job's executions.
type RoutingStrategy string

// The routing strategies. The empty strategy is RouteWeightedLeastConnections.
const (
	// RouteWeightedLeastConnections picks the agent with the fewest executions in flight per
	// unit of weight.
	RouteWeightedLeastConnections RoutingStrategy = "weighted_least_connections"
	// RouteLeastConnections picks the agent with the fewest executions in flight.
	RouteLeastConnections RoutingStrategy = "least_connections"
	// RouteRoundRobin picks the agents in turn.
	RouteRoundRobin RoutingStrategy = "round_robin"
	// RouteWeightedRoundRobin picks the agents in turn, each as often as its weight.
	RouteWeightedRoundRobin RoutingStrategy = "weighted_round_robin"
	// RouteRandom picks an agent at random.
	RouteRandom RoutingStrategy = "random"
	// RouteConsistentHash picks the agent the routing's hash key maps to.
	RouteConsistentHash RoutingStrategy = "consistent_hash"
	// RouteBroadcast runs one execution on every matching agent.
	RouteBroadcast RoutingStrategy = "broadcast"
	// RouteSharding runs Shards executions per fire, each with its shard index.
	RouteSharding RoutingStrategy = "sharding"
	// RouteShortestExpectedJobFirst lets the execution expected to finish soonest go first
	// when agents are saturated; agents are picked by weighted least connections.
	RouteShortestExpectedJobFirst RoutingStrategy = "shortest_expected_job_first"
)

// RoutingStrategies lists every strategy, the default first.
var RoutingStrategies = []RoutingStrategy{
	RouteWeightedLeastConnections, RouteLeastConnections, RouteRoundRobin, RouteWeightedRoundRobin,
	RouteRandom, RouteConsistentHash, RouteBroadcast, RouteSharding, RouteShortestExpectedJobFirst,
}

// MaxShards bounds Routing.Shards.
const MaxShards = 1000

// Routing says how a job's executions find their agents.
type Routing struct {
	// Strategy is how an agent is chosen; empty means RouteWeightedLeastConnections.
	Strategy RoutingStrategy `json:"strategy,omitempty"`
	// HashKey is what RouteConsistentHash hashes; empty means the job's name.
	HashKey string `json:"hash_key,omitempty"`
	// Shards is how many executions each fire becomes under RouteSharding, from 1 to
	// MaxShards.
	Shards int `json:"shards,omitempty"`
}

// IsZero reports whether r is the default routing.
func (r Routing) IsZero() bool { return r == Routing{} }

// Route is an execution's copy of its job's routing, and where it stands in the fan-out of
// its fire: which shard it is, or which agent it was made for.
type Route struct {
	// Routing is the job's routing when the execution was created.
	Routing
	// ShardIndex is the shard this execution handles, from 0, when ShardTotal is set.
	ShardIndex int
	// ShardTotal is the number of shards of its fire; zero when it is not sharded.
	ShardTotal int
	// PinnedAgent, when set, is the only agent that may run it (RouteBroadcast).
	PinnedAgent string
}

// FansOut reports whether the execution still stands for its whole fire: its routing makes
// one execution into several (sharding, broadcast) and it has not been made into them yet.
// ClaimExecutions makes it into them (ClaimParams.FanOut) before it is assigned.
func (r Route) FansOut() bool {
	switch r.Strategy {
	case RouteSharding, RouteBroadcast:
		return r.ShardTotal == 0 && r.PinnedAgent == ""
	}
	return false
}

// ExpectedDurationSamples is how many of a job's latest succeeded executions
// ClaimExecutions learns its expected duration from.
const ExpectedDurationSamples = 20

// expectedDurationWeight is the weight of the newest sample in the exponentially weighted
// mean of ExpectedDuration.
const expectedDurationWeight = 0.3

// ExpectedDuration is the exponentially weighted mean of run times, oldest first: each
// sample counts for 0.3 and what came before for 0.7, so that a job whose handler got slower
// is seen as slower within a few runs. It returns zero for no samples.
func ExpectedDuration(oldestFirst []time.Duration) time.Duration {
	if len(oldestFirst) == 0 {
		return 0
	}
	mean := float64(oldestFirst[0])
	for _, d := range oldestFirst[1:] {
		mean = expectedDurationWeight*float64(d) + (1-expectedDurationWeight)*mean
	}
	return time.Duration(mean)
}
