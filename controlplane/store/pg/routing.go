package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tockhq/tock/controlplane/store"
)

// This file holds routing: the routing columns of jobs and executions, and the work
// ClaimExecutions does on its candidates before Pick (fan-out, expected durations).

// routeColumns are an execution's routing columns, the last of execColumns.
const routeColumns = `routing, shard_index, shard_total, pinned_agent`

// routingArg encodes a routing for a JSONB column; the default routing is NULL.
func routingArg(r store.Routing) (any, error) {
	if r.IsZero() {
		return nil, nil
	}
	return jsonb(r)
}

// fromRouting decodes routingArg.
func fromRouting(v []byte) (store.Routing, error) {
	var r store.Routing
	if err := fromJSON(v, &r); err != nil {
		return store.Routing{}, err
	}
	return r, nil
}

// routeArgs returns a route's values in routeColumns order.
func routeArgs(r store.Route) ([]any, error) {
	routing, err := routingArg(r.Routing)
	if err != nil {
		return nil, fmt.Errorf("encode routing: %w", err)
	}
	return []any{routing, int64(r.ShardIndex), int64(r.ShardTotal), r.PinnedAgent}, nil
}

// routeScan receives the routeColumns of a row.
type routeScan struct {
	routing      []byte
	index, total int64
	pinned       string
}

// dest returns the scan destinations, in routeColumns order.
func (r *routeScan) dest() []any { return []any{&r.routing, &r.index, &r.total, &r.pinned} }

// route decodes what was scanned.
func (r *routeScan) route() (store.Route, error) {
	routing, err := fromRouting(r.routing)
	if err != nil {
		return store.Route{}, fmt.Errorf("decode routing: %w", err)
	}
	return store.Route{Routing: routing, ShardIndex: int(r.index), ShardTotal: int(r.total), PinnedAgent: r.pinned}, nil
}

// prepareCandidates is ClaimExecutions' work on its candidates before Pick: candidates that
// stand for a whole fire are fanned out (the fan-out joins the candidates, in their place),
// and those whose strategy is shortest-expected-job-first get their job's expected duration.
func prepareCandidates(ctx context.Context, tx pgx.Tx, candidates []store.Execution, fanOut func(store.Execution) []store.Route, now time.Time) ([]store.Execution, error) {
	out := make([]store.Execution, 0, len(candidates))
	for _, c := range candidates {
		if !c.Route.FansOut() {
			out = append(out, c)
			continue
		}
		made, err := fanOutCandidate(ctx, tx, c, fanOut, now)
		if err != nil {
			return nil, fmt.Errorf("fan out execution %s: %w", c.ID, err)
		}
		out = append(out, made...)
	}
	if err := expectDurations(ctx, tx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// fanOutCandidate makes one candidate into the executions fanOut gives routes for: the
// candidate takes the first route, copies of it the others. It returns them, or nothing when
// there is no fan-out to make (or another transaction made it first).
func fanOutCandidate(ctx context.Context, tx pgx.Tx, c store.Execution, fanOut func(store.Execution) []store.Route, now time.Time) ([]store.Execution, error) {
	if fanOut == nil {
		return nil, nil
	}
	routes := fanOut(c)
	if len(routes) == 0 {
		return nil, nil
	}
	first, err := routeArgs(routes[0])
	if err != nil {
		return nil, err
	}
	self, err := scanExecution(tx.QueryRow(ctx, `UPDATE executions
		SET routing = $1, shard_index = $2, shard_total = $3, pinned_agent = $4
		WHERE id = $5 AND state = 'pending' AND shard_total = 0 AND pinned_agent = ''
		RETURNING `+execColumns, append(first, c.ID)...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	made := make([]store.Execution, 0, len(routes))
	made = append(made, self)
	for _, r := range routes[1:] {
		copied := c
		copied.ID = ""
		copied.Route = r
		e, err := insertExecution(ctx, tx, copied, now)
		if err != nil {
			return nil, err
		}
		made = append(made, e)
	}
	return made, nil
}

// expectDurations sets ExpectedDuration on the candidates whose strategy is
// shortest-expected-job-first, from their jobs' latest succeeded runs.
func expectDurations(ctx context.Context, q querier, candidates []store.Execution) error {
	expected := map[string]time.Duration{}
	for i := range candidates {
		c := &candidates[i]
		if c.Route.Strategy != store.RouteShortestExpectedJobFirst {
			continue
		}
		d, ok := expected[c.Job]
		if !ok {
			var err error
			if d, err = jobExpectedDuration(ctx, q, c.Job); err != nil {
				return fmt.Errorf("expected duration of job %q: %w", c.Job, err)
			}
			expected[c.Job] = d
		}
		c.ExpectedDuration = d
	}
	return nil
}

// jobExpectedDuration learns how long a job's runs take from its latest succeeded executions.
func jobExpectedDuration(ctx context.Context, q querier, job string) (time.Duration, error) {
	rows, err := q.Query(ctx, `SELECT started_at, finished_at FROM executions
		WHERE job = $1 AND state = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL
		ORDER BY id DESC LIMIT $2`, job, store.ExpectedDurationSamples)
	if err != nil {
		return 0, err
	}
	newestFirst, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (time.Duration, error) {
		var started, finished pgtype.Timestamptz
		if err := row.Scan(&started, &finished); err != nil {
			return 0, err
		}
		return max(fromTS(finished).Sub(fromTS(started)), 0), nil
	})
	if err != nil {
		return 0, err
	}
	slices.Reverse(newestFirst)
	return store.ExpectedDuration(newestFirst), nil
}
