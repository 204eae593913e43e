package dispatch

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/tockhq/tock/controlplane/store"
)

// This file is the placement core: given the candidates of one claim and the agents as they
// stand, it decides which candidates go to which agents. It is pure: it reads no clock, does
// no I/O, and works on copies, so a claim transaction that is retried decides the same way
// from the same input. What it learns for the next claims (round-robin positions) comes back
// as a new placementState that the dispatcher keeps only once the claim has committed.
//
//	candidates (priority, then age) ─▶ order (shortest expected job first within a priority)
//	         │
//	         ▼ for each, the agents that may run it: own, ready, serving it, pinned to it
//	 strategy: weighted least connections · least connections · round robin ·
//	           weighted round robin · random · consistent hash · (broadcast and sharding copies
//	           are placed by weighted least connections, pinned copies on their agent)
//	         │
//	         ▼
//	 assignments, never beyond an agent's free capacity

// peer is an agent as discovery describes it, this replica's or another's: consistent hashing
// ranks the agents of every replica, and a broadcast makes an execution for each.
type peer struct {
	id       string
	service  string
	labels   map[string]string
	handlers map[string]struct{}
	// own is true for the agents this replica owns; their sessions describe them better.
	own bool
}

// serves reports whether the agent can run the execution, as far as discovery tells: an agent
// whose handlers discovery does not know serves nothing here.
func (p *peer) serves(e *store.Execution) bool {
	return servesExec(e, p.service, p.labels, p.handlers)
}

// servesExec reports whether an agent with this service, labels and handlers can run e.
func servesExec(e *store.Execution, service string, labels map[string]string, handlers map[string]struct{}) bool {
	if e.Service != "" && e.Service != service {
		return false
	}
	if _, ok := handlers[e.Handler]; !ok {
		return false
	}
	for k, v := range e.Selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// placementState is what strategies remember from one claim to the next, per job.
type placementState struct {
	// roundRobin is the agent each job's last round-robin execution went to.
	roundRobin map[string]string
	// smooth is each job's smooth weighted round-robin state: every agent's current weight.
	smooth map[string]map[string]int
	// turns is weighted least connections' round-robin state among agents about as loaded,
	// across jobs: every agent's current weight.
	turns map[string]int
}

// balance returns the turns of weighted least connections.
func (s *placementState) balance() map[string]int {
	if s.turns == nil {
		s.turns = map[string]int{}
	}
	return s.turns
}

// maxRememberedJobs bounds the jobs placementState remembers; beyond it, it starts afresh,
// which only restarts the rotations.
const maxRememberedJobs = 10000

func (s placementState) clone() placementState {
	out := placementState{roundRobin: maps.Clone(s.roundRobin), smooth: make(map[string]map[string]int, len(s.smooth)), turns: maps.Clone(s.turns)}
	if out.roundRobin == nil || len(out.roundRobin) > maxRememberedJobs {
		out.roundRobin = map[string]string{}
	}
	if len(s.smooth) <= maxRememberedJobs {
		for job, w := range s.smooth {
			out.smooth[job] = maps.Clone(w)
		}
	}
	return out
}

// placement is one claim's decision in the making.
type placement struct {
	slots []slot // this replica's ready agents, by id; copies the decision changes
	peers []peer // every agent known, by id
	state placementState
	rng   *rand.Rand
}

// newPlacement starts a decision over copies of slots and peers, from state; seed drives the
// random strategy.
func newPlacement(slots []slot, peers []peer, state placementState, seed uint64) *placement {
	p := &placement{slots: slices.Clone(slots), peers: slices.Clone(peers), state: state.clone(), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	slices.SortFunc(p.slots, func(a, b slot) int { return cmp.Compare(a.id, b.id) })
	slices.SortFunc(p.peers, func(a, b peer) int { return cmp.Compare(a.id, b.id) })
	return p
}

// pick places the candidates: in order (priority first, then shortest expected job first
// where asked), each on the agent its strategy chooses among those that may run it now.
// Candidates it cannot place stay PENDING.
func (p *placement) pick(candidates []store.Execution) []store.Assignment {
	out := make([]store.Assignment, 0, len(candidates))
	for _, i := range order(candidates) {
		e := &candidates[i]
		s := p.choose(e)
		if s == nil {
			continue
		}
		s.free--
		s.inFlight++
		s.assigned++
		out = append(out, store.Assignment{ExecutionID: e.ID, AgentID: s.id})
	}
	return out
}

// choose returns the agent for e, or nil when it waits.
func (p *placement) choose(e *store.Execution) *slot {
	if e.Route.Strategy == store.RouteConsistentHash {
		return p.hashed(e)
	}
	var eligible []*slot
	for j := range p.slots {
		s := &p.slots[j]
		if s.free <= 0 || !s.serves(e) {
			continue
		}
		if pin := e.Route.PinnedAgent; pin != "" && pin != s.id {
			continue
		}
		eligible = append(eligible, s)
	}
	if len(eligible) == 0 {
		return nil
	}
	switch e.Route.Strategy {
	case store.RouteLeastConnections:
		return best(eligible, lessConnections)
	case store.RouteRoundRobin:
		return p.roundRobin(e.Job, eligible)
	case store.RouteWeightedRoundRobin:
		return p.smoothWeighted(e.Job, eligible)
	case store.RouteRandom:
		return eligible[p.rng.IntN(len(eligible))]
	}
	// Weighted least connections: the default, and how sharded, broadcast and
	// shortest-expected-job-first executions are placed.
	return p.leastLoaded(eligible)
}

// best returns the agent less prefers above all others.
func best(agents []*slot, less func(a, b *slot) bool) *slot {
	b := agents[0]
	for _, s := range agents[1:] {
		if less(s, b) {
			b = s
		}
	}
	return b
}

// fanOut returns the routes of the executions a candidate that stands for its whole fire
// becomes: Shards shards for sharding, one execution pinned to each agent that may run it
// for broadcast (sorted by agent id). No agents, no routes: the candidate waits.
func (p *placement) fanOut(e store.Execution) []store.Route {
	switch e.Route.Strategy {
	case store.RouteSharding:
		n := min(max(e.Route.Shards, 1), store.MaxShards)
		routes := make([]store.Route, n)
		for i := range routes {
			routes[i] = store.Route{Routing: e.Route.Routing, ShardIndex: i, ShardTotal: n}
		}
		return routes
	case store.RouteBroadcast:
		var routes []store.Route
		for _, id := range p.broadcastTargets(&e) {
			routes = append(routes, store.Route{Routing: e.Route.Routing, PinnedAgent: id})
		}
		return routes
	}
	return nil
}

// broadcastTargets returns the ids of the live agents that may run e, sorted: this replica's
// ready agents as their sessions describe them, and the other replicas' as discovery does.
func (p *placement) broadcastTargets(e *store.Execution) []string {
	var ids []string
	for i := range p.slots {
		if p.slots[i].serves(e) {
			ids = append(ids, p.slots[i].id)
		}
	}
	for i := range p.peers {
		if !p.peers[i].own && p.peers[i].serves(e) {
			ids = append(ids, p.peers[i].id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
