package agent

import (
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"go.opentelemetry.io/otel/trace"
)

// resultKey names one result: an execution's outcome under one lease epoch.
type resultKey struct {
	executionID string
	leaseEpoch  int64
}

// resultBuffer holds results until the control plane acknowledges them, in the order they
// were produced. It is not safe for concurrent use; the Agent's mutex guards it.
type resultBuffer struct {
	byKey map[resultKey]*bufferedResult
	order []resultKey // insertion order; may still name removed keys until compacted
}

// bufferedResult is a result, whether it was ever sent to a session, and the span of its
// execution (for log lines about it).
type bufferedResult struct {
	r           *agentv1.Result
	sent        bool
	spanContext trace.SpanContext
}

func newResultBuffer() *resultBuffer {
	return &resultBuffer{byKey: make(map[resultKey]*bufferedResult)}
}

// add buffers r, replacing any result with the same key; sent says whether it is being sent
// to a session now.
func (b *resultBuffer) add(r *agentv1.Result, sent bool, sc trace.SpanContext) {
	k := resultKey{r.GetExecutionId(), r.GetLeaseEpoch()}
	if _, ok := b.byKey[k]; !ok {
		b.order = append(b.order, k)
	}
	b.byKey[k] = &bufferedResult{r: r, sent: sent, spanContext: sc}
}

// has reports whether a result for the execution and epoch is buffered.
func (b *resultBuffer) has(executionID string, leaseEpoch int64) bool {
	_, ok := b.byKey[resultKey{executionID, leaseEpoch}]
	return ok
}

// remove forgets a result and returns it; false when it was not buffered.
func (b *resultBuffer) remove(executionID string, leaseEpoch int64) (*bufferedResult, bool) {
	k := resultKey{executionID, leaseEpoch}
	br, ok := b.byKey[k]
	if !ok {
		return nil, false
	}
	delete(b.byKey, k)
	if len(b.order) > 2*len(b.byKey)+64 {
		b.compact()
	}
	return br, true
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

// all returns every buffered result, oldest first, marks them sent, and says how many of them
// had been sent before.
func (b *resultBuffer) all() (rs []*agentv1.Result, resent int) {
	b.compact()
	rs = make([]*agentv1.Result, 0, len(b.order))
	for _, k := range b.order {
		br := b.byKey[k]
		if br.sent {
			resent++
		}
		br.sent = true
		rs = append(rs, br.r)
	}
	return rs, resent
}
