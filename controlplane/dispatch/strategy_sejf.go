package dispatch

import (
	"cmp"
	"slices"

	"github.com/tockhq/tock/controlplane/store"
)

// order returns the order in which a claim's candidates are placed, as indexes into them.
// The store offers them highest priority first, then oldest; priority stays first. Within a
// priority, the candidates of shortest-expected-job-first jobs are reordered among the places
// they hold, the shortest expected run first (jobs with no history after those with some),
// while the others keep their places. So when capacity is scarce, the short jobs among them
// take the free slots first and the queue of such jobs drains fastest; when it is not, every
// candidate is placed anyway.
func order(candidates []store.Execution) []int {
	idx := make([]int, len(candidates))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(candidates[b].Priority, candidates[a].Priority) })
	for start := 0; start < len(idx); {
		end := start
		for end < len(idx) && candidates[idx[end]].Priority == candidates[idx[start]].Priority {
			end++
		}
		reorderShortestFirst(candidates, idx[start:end])
		start = end
	}
	return idx
}

// reorderShortestFirst sorts the shortest-expected-job-first candidates of one priority
// among the places they hold in idx.
func reorderShortestFirst(candidates []store.Execution, idx []int) {
	var places, sejf []int
	for k, i := range idx {
		if candidates[i].Route.Strategy == store.RouteShortestExpectedJobFirst {
			places = append(places, k)
			sejf = append(sejf, i)
		}
	}
	if len(sejf) < 2 {
		return
	}
	slices.SortStableFunc(sejf, func(a, b int) int {
		da, db := candidates[a].ExpectedDuration, candidates[b].ExpectedDuration
		switch {
		case da == db:
			return 0
		case da == 0: // unknown: after the known ones
			return 1
		case db == 0:
			return -1
		}
		return cmp.Compare(da, db)
	})
	for n, k := range places {
		idx[k] = sejf[n]
	}
}
