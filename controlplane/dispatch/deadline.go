package dispatch

import (
	"context"

	"github.com/tockhq/tock/controlplane/store"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

// expireDeadlines ends the executions whose schedule-to-start or schedule-to-close timeout
// passed (store.ExpireDeadlines). Those still running were flagged for cancellation: the
// loop is woken so that their agents are told at once.
func (d *Dispatcher) expireDeadlines(ctx context.Context) {
	expired, err := d.store.ExpireDeadlines(ctx, d.cfg.MaxBatch)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("expire deadlines", "err", err)
		}
		return
	}
	for _, e := range expired {
		kind := ""
		if e.Error != nil {
			kind = e.Error.Kind
		}
		d.cfg.Logger.Info("execution timed out", "execution", e.ID, "job", e.Job, "attempt", e.Attempt,
			"kind", kind, "state", string(e.State))
	}
	if len(expired) > 0 {
		d.Wake()
	}
}

// upstreamToProto carries the results of the upstream executions of a dependent execution
// to its handler.
func upstreamToProto(up []store.UpstreamResult) []*agentv1.Upstream {
	if len(up) == 0 {
		return nil
	}
	out := make([]*agentv1.Upstream, len(up))
	for i, u := range up {
		out[i] = &agentv1.Upstream{Job: u.Job, ExecutionId: u.ExecutionID, Output: u.Output, ContentType: u.ContentType}
	}
	return out
}
