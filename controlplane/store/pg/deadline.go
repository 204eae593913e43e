package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tockhq/tock/controlplane/store"
)

// ExpireDeadlines ends up to limit executions of each kind whose deadline passed, in one
// transaction, and returns them:
//
//   - a PENDING execution past its fire's schedule-to-close deadline, or never assigned and
//     past its schedule-to-start deadline, becomes TIMED_OUT;
//   - an ASSIGNED or RUNNING one past its fire's schedule-to-close deadline is flagged for
//     cancellation with the timeout error preset, so that its agent cancels the handler and
//     the result it reports is applied as TIMED_OUT (Completion.WithCloseTimeout).
//
// None of them is retried. The rows are claimed as the lease janitor claims them, so that
// replicas expiring at once pass over each other's.
func (s *Store) ExpireDeadlines(ctx context.Context, limit int) ([]store.Execution, error) {
	if limit <= 0 {
		return nil, nil
	}
	closeErr, err := jsonb(store.TimeoutError(store.KindScheduleToCloseTimeout))
	if err != nil {
		return nil, err
	}
	startErr, err := jsonb(store.TimeoutError(store.KindScheduleToStartTimeout))
	if err != nil {
		return nil, err
	}
	var expired []store.Execution
	err = s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		expired = nil
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE executions SET state = 'timed_out', error = $1, finished_at = $2
				WHERE id IN (SELECT id FROM executions
					WHERE state IN ('pending', 'assigned', 'running') AND close_deadline IS NOT NULL
						AND close_deadline < $2 AND state = 'pending'
					ORDER BY close_deadline LIMIT $3` + s.dialect.claimLock + `)
				RETURNING ` + execColumns, []any{closeErr, now, limit}},
			{`UPDATE executions SET cancel_requested = true, error = $1
				WHERE id IN (SELECT id FROM executions
					WHERE state IN ('pending', 'assigned', 'running') AND close_deadline IS NOT NULL
						AND close_deadline < $2 AND state IN ('assigned', 'running') AND NOT cancel_requested
					ORDER BY close_deadline LIMIT $3` + s.dialect.claimLock + `)
				RETURNING ` + execColumns, []any{closeErr, now, limit}},
			{`UPDATE executions SET state = 'timed_out', error = $1, finished_at = $2
				WHERE id IN (SELECT id FROM executions
					WHERE state = 'pending' AND start_deadline IS NOT NULL AND start_deadline < $2
						AND assigned_at IS NULL
					ORDER BY start_deadline LIMIT $3` + s.dialect.claimLock + `)
				RETURNING ` + execColumns, []any{startErr, now, limit}},
		} {
			execs, err := collectExecutions(tx.Query(ctx, q.sql, q.args...))
			if err != nil {
				return err
			}
			expired = append(expired, execs...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire deadlines: %w", interpretError(err))
	}
	return expired, nil
}
