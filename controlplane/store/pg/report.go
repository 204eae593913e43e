package pg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tockhq/tock/controlplane/store"
)

// RecordProgress applies progress reports whose lease epoch is the execution's current one.
func (s *Store) RecordProgress(ctx context.Context, updates []store.ProgressUpdate) (int, error) {
	if len(updates) == 0 {
		return 0, nil
	}
	var applied int
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		applied = 0
		for _, u := range updates {
			msg, _ := store.TruncateLogMessage(u.Message, store.MaxProgressMessageBytes)
			tag, err := tx.Exec(ctx, `UPDATE executions
				SET progress_fraction = $1, progress_message = $2, progress_at = $3
				WHERE id = $4 AND lease_epoch = $5`,
				store.ClampFraction(u.Fraction), msg, now, u.ID, u.Epoch)
			if err != nil {
				return err
			}
			applied += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record progress: %w", interpretError(err))
	}
	return applied, nil
}

// logInsertRows bounds the rows of one INSERT of log lines (six parameters each).
const logInsertRows = 1000

// AppendLogs stores the log lines whose lease epoch is their execution's current one. The
// executions' rows are locked in id order, so that concurrent appends for one execution
// count its lines one after the other.
func (s *Store) AppendLogs(ctx context.Context, lines []store.LogLine) (store.AppendLogsResult, error) {
	if len(lines) == 0 {
		return store.AppendLogsResult{}, nil
	}
	ids, byID := store.GroupLogs(lines)
	var res store.AppendLogsResult
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		res = store.AppendLogsResult{}
		rows, err := tx.Query(ctx, `SELECT id, lease_epoch, log_lines FROM executions
			WHERE id = ANY($1) ORDER BY id`+s.dialect.rowLock, ids)
		if err != nil {
			return err
		}
		type state struct{ epoch, have int64 }
		current := make(map[string]state, len(ids))
		for rows.Next() {
			var (
				id string
				st state
			)
			if err := rows.Scan(&id, &st.epoch, &st.have); err != nil {
				rows.Close()
				return err
			}
			current[id] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var args []any
		flush := func() error {
			if len(args) == 0 {
				return nil
			}
			n := len(args) / 6
			values := make([]byte, 0, n*40)
			for i := range n {
				if i > 0 {
					values = append(values, ", "...)
				}
				values = append(values, '(')
				values = append(values, params(i*6+1, 6)...)
				values = append(values, ')')
			}
			_, err := tx.Exec(ctx, `INSERT INTO execution_logs
				(execution_id, id, lease_epoch, time, level, message) VALUES `+string(values), args...)
			args = args[:0]
			return err
		}
		for _, id := range ids {
			st, ok := current[id]
			if !ok {
				res.Rejected += len(byID[id])
				continue
			}
			keep := store.AdmitLogs(byID[id], st.epoch, int(st.have), now, &res)
			if len(keep) == 0 {
				continue
			}
			for _, l := range keep {
				lineID, err := uuid.NewV7()
				if err != nil {
					return err
				}
				args = append(args, id, lineID.String(), l.Epoch, l.Time, l.Level, l.Message)
				if len(args) == logInsertRows*6 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE executions SET log_lines = log_lines + $1 WHERE id = $2`,
				len(keep), id); err != nil {
				return err
			}
		}
		return flush()
	})
	if err != nil {
		return store.AppendLogsResult{}, fmt.Errorf("append logs: %w", interpretError(err))
	}
	return res, nil
}

// ListLogs returns an execution's log lines in id order.
func (s *Store) ListLogs(ctx context.Context, params store.ListLogsParams) ([]store.LogLine, error) {
	lines, err := query(ctx, s, scanLogLine, `SELECT execution_id, id, lease_epoch, time, level, message
		FROM execution_logs WHERE execution_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		params.ExecutionID, params.After, pageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("list logs of execution %s: %w", params.ExecutionID, interpretError(err))
	}
	if len(lines) == 0 {
		found, err := query(ctx, s, func(row pgx.Row) (int, error) {
			var one int
			return one, row.Scan(&one)
		}, `SELECT 1 FROM executions WHERE id = $1`, params.ExecutionID)
		if err == nil && len(found) == 0 {
			err = store.ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("list logs of execution %s: %w", params.ExecutionID, interpretError(err))
		}
	}
	return lines, nil
}

func scanLogLine(row pgx.Row) (store.LogLine, error) {
	var (
		l  store.LogLine
		at pgtype.Timestamptz
	)
	if err := row.Scan(&l.ID, &l.LineID, &l.Epoch, &at, &l.Level, &l.Message); err != nil {
		return store.LogLine{}, err
	}
	l.Time = fromTS(at)
	return l, nil
}

// PendingStats counts the due PENDING executions through the partial index
// executions_not_before.
func (s *Store) PendingStats(ctx context.Context) (store.PendingStats, error) {
	var (
		st     store.PendingStats
		oldest pgtype.Timestamptz
	)
	err := s.retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT count(*), min(not_before), now() FROM executions
			WHERE state = 'pending' AND not_before <= now()`).Scan(&st.Due, &oldest, &st.Now)
	})
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return store.PendingStats{}, fmt.Errorf("pending stats: %w", interpretError(err))
	}
	st.OldestDue = fromTS(oldest)
	st.Now = st.Now.UTC()
	return st, nil
}
