package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// finalStates is the SQL condition of an execution that ended; the partial index
// executions_finished has the same predicate.
const finalStates = `state IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'lost')`

// hasLiveAttempt is the SQL condition, on a row aliased x with job and nominal_time, that an
// attempt of the same fire is still pending or held by an agent.
const hasLiveAttempt = `EXISTS (SELECT 1 FROM executions AS l INDEXED BY executions_live
	WHERE l.job = x.job AND l.nominal_time = x.nominal_time
		AND l.state IN ('pending', 'assigned', 'running'))`

// PruneExecutions deletes up to limit final executions that finished more than olderThan
// ago, oldest first, keeping those of fires with a live attempt.
func (s *Store) PruneExecutions(ctx context.Context, olderThan time.Duration, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	// The same selection twice in one transaction, which no other writer can interleave
	// with: the executions' trigger request keys go with them.
	chosen := `SELECT x.id FROM executions AS x INDEXED BY executions_finished
		WHERE x.` + finalStates + ` AND x.finished_at < ? AND NOT ` + hasLiveAttempt + `
		ORDER BY x.finished_at LIMIT ?`
	n, err := s.prune(ctx, olderThan, limit,
		`DELETE FROM trigger_requests WHERE execution_id IN (`+chosen+`)`,
		`DELETE FROM executions WHERE id IN (`+chosen+`)`)
	if err != nil {
		return 0, fmt.Errorf("prune executions: %w", err)
	}
	return n, nil
}

// PruneFires deletes up to limit fires recorded more than olderThan ago, oldest first,
// keeping those with a live attempt.
func (s *Store) PruneFires(ctx context.Context, olderThan time.Duration, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	n, err := s.prune(ctx, olderThan, limit, `DELETE FROM fires WHERE (job, nominal_time) IN (
		SELECT x.job, x.nominal_time FROM fires AS x INDEXED BY fires_fired
		WHERE x.fired_at < ? AND NOT `+hasLiveAttempt+`
		ORDER BY x.fired_at LIMIT ?)`)
	if err != nil {
		return 0, fmt.Errorf("prune fires: %w", err)
	}
	return n, nil
}

// prune runs bounded DELETEs in one transaction, each with the parameters cutoff
// (now-olderThan) and limit, and returns how many rows the last one deleted.
func (s *Store) prune(ctx context.Context, olderThan time.Duration, limit int, queries ...string) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		for _, query := range queries {
			res, err := tx.ExecContext(ctx, query, now.Add(-olderThan).UnixMicro(), limit)
			if err != nil {
				return interpretError(err)
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	return int(n), err
}

// PruneRegistrations deletes replica and agent registrations that expired more than
// expiredFor ago.
func (s *Store) PruneRegistrations(ctx context.Context, expiredFor time.Duration) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		n = 0
		for _, table := range []string{"replicas", "agents"} {
			res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE expires_at < ?`, now.Add(-expiredFor).UnixMicro())
			if err != nil {
				return interpretError(err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune registrations: %w", err)
	}
	return int(n), nil
}
