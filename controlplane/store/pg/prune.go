package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// finalStates is the SQL condition of an execution that ended; the partial index
// executions_finished has the same predicate.
const finalStates = `state IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'lost')`

// hasLiveAttempt is the SQL condition, on a row aliased x with job and nominal_time, that
// an attempt of the same fire is still pending or held by an agent. It reads the partial
// index executions_live.
const hasLiveAttempt = `EXISTS (SELECT 1 FROM executions l
	WHERE l.job = x.job AND l.nominal_time = x.nominal_time
		AND l.state IN ('pending', 'assigned', 'running'))`

// PruneExecutions deletes up to limit final executions that finished more than olderThan
// ago, oldest first, keeping those of fires with a live attempt. The rows are chosen by a
// bounded subquery (DELETE … WHERE id IN (SELECT … LIMIT n)), the form CockroachDB runs
// without scanning the table, and claimed like other claims so that replicas pruning at
// once take different rows. Their trigger request keys are deleted with them.
func (s *Store) PruneExecutions(ctx context.Context, olderThan time.Duration, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		rows, err := tx.Query(ctx, `DELETE FROM executions WHERE id IN (
			SELECT x.id FROM executions x
			WHERE x.`+finalStates+` AND x.finished_at < $1 AND NOT `+hasLiveAttempt+`
			ORDER BY x.finished_at LIMIT $2`+s.dialect.claimLock+`) RETURNING id`,
			now.Add(-olderThan), limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		n = len(ids)
		if n == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `DELETE FROM trigger_requests WHERE execution_id = ANY($1)`, ids)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune executions: %w", interpretError(err))
	}
	return n, nil
}

// PruneFires deletes up to limit fires recorded more than olderThan ago, oldest first,
// keeping those with a live attempt.
func (s *Store) PruneFires(ctx context.Context, olderThan time.Duration, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		tag, err := tx.Exec(ctx, `DELETE FROM fires WHERE (job, nominal_time) IN (
			SELECT x.job, x.nominal_time FROM fires x
			WHERE x.fired_at < $1 AND NOT `+hasLiveAttempt+`
			ORDER BY x.fired_at LIMIT $2`+s.dialect.claimLock+`)`,
			now.Add(-olderThan), limit)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune fires: %w", interpretError(err))
	}
	return n, nil
}

// PruneRegistrations deletes replica and agent registrations that expired more than
// expiredFor ago.
func (s *Store) PruneRegistrations(ctx context.Context, expiredFor time.Duration) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		n = 0
		for _, table := range []string{"replicas", "agents"} {
			tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE expires_at < $1`, now.Add(-expiredFor))
			if err != nil {
				return err
			}
			n += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune registrations: %w", interpretError(err))
	}
	return n, nil
}
