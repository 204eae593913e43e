package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tockhq/tock/controlplane/store"
)

// RecordProgress applies progress reports whose lease epoch is the execution's current one.
func (s *Store) RecordProgress(ctx context.Context, updates []store.ProgressUpdate) (int, error) {
	if len(updates) == 0 {
		return 0, nil
	}
	var applied int
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		applied = 0
		for _, u := range updates {
			msg, _ := store.TruncateLogMessage(u.Message, store.MaxProgressMessageBytes)
			res, err := tx.ExecContext(ctx, `UPDATE executions
				SET progress_fraction = ?, progress_message = ?, progress_at = ?
				WHERE id = ? AND lease_epoch = ?`,
				store.ClampFraction(u.Fraction), msg, micros(now), u.ID, u.Epoch)
			if err != nil {
				return interpretError(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			applied += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record progress: %w", err)
	}
	return applied, nil
}

// AppendLogs stores the log lines whose lease epoch is their execution's current one.
func (s *Store) AppendLogs(ctx context.Context, lines []store.LogLine) (store.AppendLogsResult, error) {
	if len(lines) == 0 {
		return store.AppendLogsResult{}, nil
	}
	ids, byID := store.GroupLogs(lines)
	var res store.AppendLogsResult
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		res = store.AppendLogsResult{}
		for _, id := range ids {
			var epoch, have int64
			err := tx.QueryRowContext(ctx, `SELECT lease_epoch, log_lines FROM executions WHERE id = ?`, id).Scan(&epoch, &have)
			if errors.Is(err, sql.ErrNoRows) {
				res.Rejected += len(byID[id])
				continue
			}
			if err != nil {
				return interpretError(err)
			}
			keep := store.AdmitLogs(byID[id], epoch, int(have), now, &res)
			if len(keep) == 0 {
				continue
			}
			for _, l := range keep {
				lineID, err := uuid.NewV7()
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO execution_logs
					(execution_id, id, lease_epoch, time, level, message) VALUES (?, ?, ?, ?, ?, ?)`,
					id, lineID.String(), l.Epoch, micros(l.Time), l.Level, l.Message); err != nil {
					return interpretError(err)
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE executions SET log_lines = log_lines + ? WHERE id = ?`,
				len(keep), id); err != nil {
				return interpretError(err)
			}
		}
		return nil
	})
	if err != nil {
		return store.AppendLogsResult{}, fmt.Errorf("append logs: %w", err)
	}
	return res, nil
}

// ListLogs returns an execution's log lines in id order.
func (s *Store) ListLogs(ctx context.Context, params store.ListLogsParams) ([]store.LogLine, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT execution_id, id, lease_epoch, time, level, message
		FROM execution_logs WHERE execution_id = ? AND id > ? ORDER BY id LIMIT ?`,
		params.ExecutionID, params.After, pageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("list logs of execution %s: %w", params.ExecutionID, interpretError(err))
	}
	defer rows.Close()
	var out []store.LogLine
	for rows.Next() {
		var (
			l  store.LogLine
			at sql.NullInt64
		)
		if err := rows.Scan(&l.ID, &l.LineID, &l.Epoch, &at, &l.Level, &l.Message); err != nil {
			return nil, fmt.Errorf("list logs of execution %s: %w", params.ExecutionID, err)
		}
		l.Time = fromMicros(at)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list logs of execution %s: %w", params.ExecutionID, interpretError(err))
	}
	if len(out) == 0 {
		var one int
		err := s.read.QueryRowContext(ctx, `SELECT 1 FROM executions WHERE id = ?`, params.ExecutionID).Scan(&one)
		if err != nil {
			return nil, fmt.Errorf("list logs of execution %s: %w", params.ExecutionID, interpretError(err))
		}
	}
	return out, nil
}

// PendingStats counts the due PENDING executions through the partial index
// executions_not_before.
func (s *Store) PendingStats(ctx context.Context) (store.PendingStats, error) {
	now := s.now()
	var (
		n      int
		oldest sql.NullInt64
	)
	err := s.read.QueryRowContext(ctx, `SELECT count(*), min(not_before) FROM executions INDEXED BY executions_not_before
		WHERE state = 'pending' AND not_before <= ?`, now.UnixMicro()).Scan(&n, &oldest)
	if err != nil {
		return store.PendingStats{}, fmt.Errorf("pending stats: %w", interpretError(err))
	}
	return store.PendingStats{Due: n, OldestDue: fromMicros(oldest), Now: now}, nil
}
