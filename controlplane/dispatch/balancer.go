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

// pickWLC assigns candidates to agents by weighted least connections (leastLoaded). It is
// pure: it works on a copy of slots, so a retried transaction picks again from the same state.
func pickWLC(candidates []store.Execution, slots []slot) []store.Assignment {
	return newPlacement(slots, nil, placementState{}, 0).pick(candidates)
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
