package api

import (
	"github.com/tockhq/tock/controlplane/store"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// maxHashKeyLen bounds a routing's hash key.
const maxHashKeyLen = 256

var routingStrategies = map[tockv1.RoutingStrategy]store.RoutingStrategy{
	tockv1.RoutingStrategy_ROUTING_STRATEGY_WEIGHTED_LEAST_CONNECTIONS:  store.RouteWeightedLeastConnections,
	tockv1.RoutingStrategy_ROUTING_STRATEGY_LEAST_CONNECTIONS:           store.RouteLeastConnections,
	tockv1.RoutingStrategy_ROUTING_STRATEGY_ROUND_ROBIN:                 store.RouteRoundRobin,
	tockv1.RoutingStrategy_ROUTING_STRATEGY_WEIGHTED_ROUND_ROBIN:        store.RouteWeightedRoundRobin,
	tockv1.RoutingStrategy_ROUTING_STRATEGY_RANDOM:                      store.RouteRandom,
	tockv1.RoutingStrategy_ROUTING_STRATEGY_CONSISTENT_HASH:             store.RouteConsistentHash,
	tockv1.RoutingStrategy_ROUTING_STRATEGY_BROADCAST:                   store.RouteBroadcast,
	tockv1.RoutingStrategy_ROUTING_STRATEGY_SHARDING:                    store.RouteSharding,
	tockv1.RoutingStrategy_ROUTING_STRATEGY_SHORTEST_EXPECTED_JOB_FIRST: store.RouteShortestExpectedJobFirst,
}

// routingFromProto validates a job's routing and converts it. Absent, or with no strategy and
// nothing else, it is the default routing (weighted least connections), stored as the zero
// Routing.
func routingFromProto(p *tockv1.Routing) (store.Routing, error) {
	if p == nil {
		return store.Routing{}, nil
	}
	var r store.Routing
	if p.GetStrategy() != tockv1.RoutingStrategy_ROUTING_STRATEGY_UNSPECIFIED {
		s, ok := routingStrategies[p.GetStrategy()]
		if !ok {
			return store.Routing{}, invalid("job.routing.strategy", "%d is not a routing strategy", int32(p.GetStrategy()))
		}
		if s != store.RouteWeightedLeastConnections {
			r.Strategy = s
		}
	}
	switch {
	case p.GetHashKey() != "" && r.Strategy != store.RouteConsistentHash:
		return store.Routing{}, invalid("job.routing.hash_key", "applies only to ROUTING_STRATEGY_CONSISTENT_HASH")
	case len(p.GetHashKey()) > maxHashKeyLen:
		return store.Routing{}, invalid("job.routing.hash_key", "is %d bytes; the limit is %d", len(p.GetHashKey()), maxHashKeyLen)
	case p.GetShards() != 0 && r.Strategy != store.RouteSharding:
		return store.Routing{}, invalid("job.routing.shards", "applies only to ROUTING_STRATEGY_SHARDING")
	case r.Strategy == store.RouteSharding && (p.GetShards() < 1 || p.GetShards() > store.MaxShards):
		return store.Routing{}, invalid("job.routing.shards", "must be between 1 and %d for ROUTING_STRATEGY_SHARDING, got %d", store.MaxShards, p.GetShards())
	}
	r.HashKey = p.GetHashKey()
	r.Shards = int(p.GetShards())
	return r, nil
}

// routingToProto shows a job's routing; the default routing shows its strategy.
func routingToProto(r store.Routing) *tockv1.Routing {
	out := &tockv1.Routing{
		Strategy: tockv1.RoutingStrategy_ROUTING_STRATEGY_WEIGHTED_LEAST_CONNECTIONS,
		HashKey:  r.HashKey,
		Shards:   int32(r.Shards),
	}
	for p, s := range routingStrategies {
		if s == r.Strategy {
			out.Strategy = p
		}
	}
	return out
}
