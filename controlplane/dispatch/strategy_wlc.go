package dispatch

// leastLoaded is weighted least connections: the agents whose executions in flight per unit
// of weight are lowest take the work, in proportion to their weights.
//
// An agent is in the running when its load, in flight over weight, is below the lowest load
// any agent would have after taking the execution, min over agents of (in flight + 1) over
// weight: so no agent is ever given work while another is more than one execution less
// loaded for its weight. Among those in the running, smooth weighted round robin chooses
// (weightedTurn). Loads are whole numbers of executions, and a light agent's load moves in
// large steps: comparing loads alone favours the heavy agents or the light ones by up to a
// fifth, depending on how many executions are in flight. Taking turns by weight among the
// agents that are about as loaded gives each agent its weight's share of the executions, at
// any load, while the load bound still steers work away from an agent that is slow to finish
// its own.
func (p *placement) leastLoaded(eligible []*slot) *slot {
	best := eligible[0]
	for _, s := range eligible[1:] {
		// (s.inFlight+1)/s.weight < (best.inFlight+1)/best.weight
		if int64(s.inFlight+1)*int64(best.weight) < int64(best.inFlight+1)*int64(s.weight) {
			best = s
		}
	}
	running := make([]*slot, 0, len(eligible))
	for _, s := range eligible {
		// s.inFlight/s.weight < (best.inFlight+1)/best.weight
		if int64(s.inFlight)*int64(best.weight) < int64(best.inFlight+1)*int64(s.weight) {
			running = append(running, s)
		}
	}
	return weightedTurn(p.state.balance(), running)
}
