package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// This file holds routing: the routing columns of jobs and executions, and the work
// ClaimExecutions does on its candidates before Pick (fan-out, expected durations).

// routeColumns are an execution's routing columns, the last of execColumns.
const routeColumns = `routing, shard_index, shard_total, pinned_agent`

// routingArg encodes a routing as JSON text; the default routing is NULL.
func routingArg(r store.Routing) (any, error) {
	if r.IsZero() {
		return nil, nil
	}
	return jsonText(r)
}

// fromRouting decodes routingArg.
func fromRouting(v sql.NullString) (store.Routing, error) {
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
	routing      sql.NullString
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
func prepareCandidates(ctx context.Context, tx *sql.Tx, candidates []store.Execution, fanOut func(store.Execution) []store.Route, now time.Time) ([]store.Execution, error) {
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
func fanOutCandidate(ctx context.Context, tx *sql.Tx, c store.Execution, fanOut func(store.Execution) []store.Route, now time.Time) ([]store.Execution, error) {
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
	self, err := scanExecution(tx.QueryRowContext(ctx, `UPDATE executions
		SET routing = ?, shard_index = ?, shard_total = ?, pinned_agent = ?
		WHERE id = ? AND state = 'pending' AND shard_total = 0 AND pinned_agent = ''
		RETURNING `+execColumns, append(first, c.ID)...))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return nil, interpretError(err)
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
func expectDurations(ctx context.Context, q queryer, candidates []store.Execution) error {
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
func jobExpectedDuration(ctx context.Context, q queryer, job string) (time.Duration, error) {
	rows, err := q.QueryContext(ctx, `SELECT started_at, finished_at FROM executions INDEXED BY executions_job
		WHERE job = ? AND state = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL
		ORDER BY id DESC LIMIT ?`, job, store.ExpectedDurationSamples)
	if err != nil {
		return 0, interpretError(err)
	}
	defer rows.Close()
	var newestFirst []time.Duration
	for rows.Next() {
		var started, finished sql.NullInt64
		if err := rows.Scan(&started, &finished); err != nil {
			return 0, err
		}
		newestFirst = append(newestFirst, max(fromMicros(finished).Sub(fromMicros(started)), 0))
	}
	if err := rows.Err(); err != nil {
		return 0, interpretError(err)
	}
	slices.Reverse(newestFirst)
	return store.ExpectedDuration(newestFirst), nil
}
