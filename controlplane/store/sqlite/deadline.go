package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

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
// None of them is retried.
func (s *Store) ExpireDeadlines(ctx context.Context, limit int) ([]store.Execution, error) {
	if limit <= 0 {
		return nil, nil
	}
	closeErr, err := jsonText(store.TimeoutError(store.KindScheduleToCloseTimeout))
	if err != nil {
		return nil, err
	}
	startErr, err := jsonText(store.TimeoutError(store.KindScheduleToStartTimeout))
	if err != nil {
		return nil, err
	}
	var expired []store.Execution
	err = s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		expired = nil
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE executions SET state = 'timed_out', error = ?, finished_at = ?
				WHERE id IN (SELECT id FROM executions INDEXED BY executions_close_deadline
					WHERE state IN ('pending', 'assigned', 'running') AND close_deadline IS NOT NULL
						AND close_deadline < ? AND state = 'pending'
					ORDER BY close_deadline LIMIT ?)
				RETURNING ` + execColumns, []any{closeErr, micros(now), micros(now), limit}},
			{`UPDATE executions SET cancel_requested = 1, error = ?
				WHERE id IN (SELECT id FROM executions INDEXED BY executions_close_deadline
					WHERE state IN ('pending', 'assigned', 'running') AND close_deadline IS NOT NULL
						AND close_deadline < ? AND state IN ('assigned', 'running') AND cancel_requested = 0
					ORDER BY close_deadline LIMIT ?)
				RETURNING ` + execColumns, []any{closeErr, micros(now), limit}},
			{`UPDATE executions SET state = 'timed_out', error = ?, finished_at = ?
				WHERE id IN (SELECT id FROM executions INDEXED BY executions_start_deadline
					WHERE state = 'pending' AND start_deadline IS NOT NULL AND start_deadline < ?
						AND assigned_at IS NULL
					ORDER BY start_deadline LIMIT ?)
				RETURNING ` + execColumns, []any{startErr, micros(now), micros(now), limit}},
		} {
			rows, err := tx.QueryContext(ctx, q.sql, q.args...)
			if err != nil {
				return interpretError(err)
			}
			execs, err := scanExecutions(rows)
			if err != nil {
				return interpretError(err)
			}
			expired = append(expired, execs...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire deadlines: %w", err)
	}
	return expired, nil
}
