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
	if e.Service != "" && e.Service != s.service {
		return false
	}
	if _, ok := s.handlers[e.Handler]; !ok {
		return false
	}
	for k, v := range e.Selector {
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

// pickWLC assigns candidates to agents by weighted least connections: each execution goes to
// the eligible agent with free capacity whose in-flight count after the assignment, divided
// by its weight, is lowest; ties go to the agent assigned least recently counted, then to the
// lower id. It is pure: it works on a copy of slots, so a retried transaction picks again
// from the same state.
func pickWLC(candidates []store.Execution, slots []slot) []store.Assignment {
	work := make([]slot, len(slots))
	copy(work, slots)
	out := make([]store.Assignment, 0, len(candidates))
	for i := range candidates {
		e := &candidates[i]
		best := -1
		for j := range work {
			s := &work[j]
			if s.free <= 0 || !s.serves(e) {
				continue
			}
			if best < 0 || lessLoaded(s, &work[best]) {
				best = j
			}
		}
		if best < 0 {
			continue
		}
		s := &work[best]
		s.free--
		s.inFlight++
		s.assigned++
		out = append(out, store.Assignment{ExecutionID: e.ID, AgentID: s.id})
	}
	return out
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
