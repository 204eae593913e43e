package dispatch

import "hash/fnv"

// Owner returns the replica that owns an agent among the live replicas, by rendezvous
// (highest random weight) hashing: each replica's weight for the agent is a hash of the pair,
// and the highest weight wins (ties, which need a 64-bit collision, go to the lower id). It
// returns "" when replicas is empty.
//
// Every replica computes the same owner from the same set, with no coordination; the owners
// are spread evenly; and when a replica leaves, only its own agents move (each to the replica
// with its next-highest weight), while a replica that joins takes only the agents it now
// wins. The order of replicas does not matter.
func Owner(agentID string, replicas []string) string {
	var (
		best       string
		bestWeight uint64
	)
	for i, r := range replicas {
		w := weight(r, agentID)
		if i == 0 || w > bestWeight || (w == bestWeight && r < best) {
			best, bestWeight = r, w
		}
	}
	return best
}

// weight is the rendezvous weight of (replica, agent): FNV-1a over both, with a separator
// byte so that ("ab", "c") and ("a", "bc") differ, finished with the SplitMix64 mixer so
// that ids differing in one character give unrelated weights.
func weight(replica, agentID string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(replica))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(agentID))
	z := h.Sum64()
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
