package agent

import agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"

// resultKey names one result: an execution's outcome under one lease epoch.
type resultKey struct {
	executionID string
	leaseEpoch  int64
}

// resultBuffer holds results until the control plane acknowledges them, in the order they
// were produced. It is not safe for concurrent use; the Agent's mutex guards it.
type resultBuffer struct {
	byKey map[resultKey]*agentv1.Result
	order []resultKey // insertion order; may still name removed keys until compacted
}

func newResultBuffer() *resultBuffer {
	return &resultBuffer{byKey: make(map[resultKey]*agentv1.Result)}
}

// add buffers r, replacing any result with the same key.
func (b *resultBuffer) add(r *agentv1.Result) {
	k := resultKey{r.GetExecutionId(), r.GetLeaseEpoch()}
	if _, ok := b.byKey[k]; !ok {
		b.order = append(b.order, k)
	}
	b.byKey[k] = r
}

// has reports whether a result for the execution and epoch is buffered.
func (b *resultBuffer) has(executionID string, leaseEpoch int64) bool {
	_, ok := b.byKey[resultKey{executionID, leaseEpoch}]
	return ok
}

// remove forgets a result and reports whether it was buffered.
func (b *resultBuffer) remove(executionID string, leaseEpoch int64) bool {
	k := resultKey{executionID, leaseEpoch}
	if _, ok := b.byKey[k]; !ok {
		return false
	}
	delete(b.byKey, k)
	if len(b.order) > 2*len(b.byKey)+64 {
		b.compact()
	}
	return true
}

func (b *resultBuffer) compact() {
	kept := make([]resultKey, 0, len(b.byKey))
	for _, k := range b.order {
		if _, ok := b.byKey[k]; ok {
			kept = append(kept, k)
		}
	}
	b.order = kept
}

// len returns how many results are buffered.
func (b *resultBuffer) len() int { return len(b.byKey) }

// all returns every buffered result, oldest first.
func (b *resultBuffer) all() []*agentv1.Result {
	b.compact()
	out := make([]*agentv1.Result, 0, len(b.order))
	for _, k := range b.order {
		out = append(out, b.byKey[k])
	}
	return out
}
