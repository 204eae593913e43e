package dispatch

// roundRobin returns the agent after the one the job's last round-robin execution went to,
// in id order among the eligible agents (wrapping round), so that the job's executions visit
// the agents in turn. Agents that come and go shift the turn, never restart it.
func (p *placement) roundRobin(job string, eligible []*slot) *slot {
	last, ok := p.state.roundRobin[job]
	next := eligible[0] // eligible is in id order
	if ok {
		for _, s := range eligible {
			if s.id > last {
				next = s
				break
			}
		}
	}
	p.state.roundRobin[job] = next.id
	return next
}

// smoothWeighted is smooth weighted round robin, as nginx balances upstreams, with each job
// taking its own turns (weightedTurn).
func (p *placement) smoothWeighted(job string, eligible []*slot) *slot {
	current := p.state.smooth[job]
	if current == nil {
		current = map[string]int{}
		p.state.smooth[job] = current
	}
	return weightedTurn(current, eligible)
}

// weightedTurn is one turn of smooth weighted round robin: every agent's current weight grows
// by its weight, the agent with the highest current weight is chosen (ties to the lower id),
// and its current weight drops by the sum of the weights. Over any run of turns each agent is
// chosen as often as its weight, and the turns of a heavy agent are spread out rather than
// bunched (weights 5, 1, 1 give a a b a c a a, not a a a a a b c). current holds the current
// weights between turns, by agent id.
func weightedTurn(current map[string]int, agents []*slot) *slot {
	total := 0
	var chosen *slot
	for _, s := range agents {
		current[s.id] += s.weight
		total += s.weight
		if chosen == nil || current[s.id] > current[chosen.id] {
			chosen = s
		}
	}
	current[chosen.id] -= total
	return chosen
}
