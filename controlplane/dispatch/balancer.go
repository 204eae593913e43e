package dispatch

import (
	"github.com/tockhq/tock/controlplane/store"
)

// slot is one agent as the balancer sees it: what it serves and how loaded it is.
type slot struct {
	id       string
	service  string
	labels   map[string]string
	handlers map[string]struct{}
	weight   int
	free     int
	inFlight int
	// assigned counts assignments made to the agent recently; it breaks ties so that equally
	// loaded agents take turns.
	assigned uint64
}

// serves reports whether the agent can run the execution.
func (s *slot) serves(e *store.Execution) bool {
	return servesExec(e, s.service, s.labels, s.handlers)
}

// pickWLC assigns candidates to agents by weighted least connections: each execution goes to
// the eligible agent with free capacity whose in-flight count after the assignment, divided
// by its weight, is lowest; ties go to the agent assigned least recently counted, then to the
// lower id. It is pure: it works on a copy of slots, so a retried transaction picks again
// from the same state.
func pickWLC(candidates []store.Execution, slots []slot) []store.Assignment {
	return newPlacement(slots, nil, placementState{}, 0).pick(candidates)
}

// lessLoaded reports whether a is a better choice than b under weighted least connections.
func lessLoaded(a, b *slot) bool {
	// Compare (a.inFlight+1)/a.weight with (b.inFlight+1)/b.weight without division.
	la := int64(a.inFlight+1) * int64(b.weight)
	lb := int64(b.inFlight+1) * int64(a.weight)
	if la != lb {
		return la < lb
	}
	if a.assigned != b.assigned {
		// Fewer assignments per unit of weight first.
		return a.assigned*uint64(b.weight) < b.assigned*uint64(a.weight)
	}
	return a.id < b.id
}

// lessConnections reports whether a is a better choice than b under least connections: fewer
// executions in flight, whatever the weights; ties go to the agent assigned fewer, then to
// the lower id.
func lessConnections(a, b *slot) bool {
	if a.inFlight != b.inFlight {
		return a.inFlight < b.inFlight
	}
	if a.assigned != b.assigned {
		return a.assigned < b.assigned
	}
	return a.id < b.id
}
