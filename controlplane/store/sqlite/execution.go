package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// liveStates is the SQL condition of an execution held by an agent.
const liveStates = `state IN ('assigned', 'running')`

// CreateExecution stores a new PENDING execution.
func (s *Store) CreateExecution(ctx context.Context, exec store.Execution) (store.Execution, error) {
	var created store.Execution
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		var err error
		created, err = insertExecution(ctx, tx, exec, now)
		return err
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("create execution of job %q: %w", exec.Job, err)
	}
	return created, nil
}

// CreateExecutionOnce creates exec unless requestID already created an execution of the
// job, which it then returns. The key is written first, as the PostgreSQL store does.
func (s *Store) CreateExecutionOnce(ctx context.Context, exec store.Execution, requestID string) (store.Execution, bool, error) {
	if err := exec.EnsureID(); err != nil {
		return store.Execution{}, false, fmt.Errorf("create execution of job %q: %w", exec.Job, err)
	}
	var (
		out     store.Execution
		created bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO trigger_requests (job, request_id, execution_id) VALUES (?, ?, ?)
			ON CONFLICT (job, request_id) DO NOTHING`, exec.Job, requestID, exec.ID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if created = n == 1; created {
			out, err = insertExecution(ctx, tx, exec, now)
			return err
		}
		var id string
		if err := tx.QueryRowContext(ctx, `SELECT execution_id FROM trigger_requests WHERE job = ? AND request_id = ?`,
			exec.Job, requestID).Scan(&id); err != nil {
			return err
		}
		out, err = getExecution(ctx, tx, id)
		return err
	})
	if err != nil {
		return store.Execution{}, false, fmt.Errorf("create execution of job %q with request id %q: %w", exec.Job, requestID, interpretError(err))
	}
	return out, created, nil
}

// insertExecution stores e as a new PENDING execution, never assigned: it generates the id when
// empty, starts the attempt count at 1 and the trigger at manual, defaults the nominal time to
// now and NotBefore to the nominal time, and sets CreatedAt.
func insertExecution(ctx context.Context, tx *sql.Tx, e store.Execution, now time.Time) (store.Execution, error) {
	if err := e.EnsureID(); err != nil {
		return store.Execution{}, err
	}
	e.State = store.ExecPending
	e.AgentID, e.LeaseEpoch, e.LeaseDeadline, e.CancelRequested = "", 0, time.Time{}, false
	e.Result, e.ResultContentType, e.Error = nil, "", nil
	e.AssignedAt, e.StartedAt, e.FinishedAt = time.Time{}, time.Time{}, time.Time{}
	e.CreatedAt = now
	if e.Attempt <= 0 {
		e.Attempt = 1
	}
	if e.Trigger == "" {
		e.Trigger = store.TriggerManual
	}
	if e.NominalTime.IsZero() {
		e.NominalTime = now
	}
	if e.NotBefore.IsZero() {
		e.NotBefore = e.NominalTime
	}
	e.StartDeadline = store.StartDeadline(e, now)
	args, err := execArgs(e)
	if err != nil {
		return store.Execution{}, err
	}
	row := tx.QueryRowContext(ctx, `INSERT INTO executions (`+execColumns+`)
		VALUES (`+placeholders(len(args))+`) RETURNING `+execColumns, args...)
	created, err := scanExecution(row)
	return created, interpretError(err)
}

// GetExecution returns an execution by id.
func (s *Store) GetExecution(ctx context.Context, id string) (store.Execution, error) {
	exec, err := getExecution(ctx, s.read, id)
	if err != nil {
		return store.Execution{}, fmt.Errorf("get execution %s: %w", id, err)
	}
	return exec, nil
}

func getExecution(ctx context.Context, q queryer, id string) (store.Execution, error) {
	exec, err := scanExecution(q.QueryRowContext(ctx, `SELECT `+execColumns+` FROM executions WHERE id = ?`, id))
	return exec, interpretError(err)
}

// ListExecutions returns executions newest first.
func (s *Store) ListExecutions(ctx context.Context, params store.ListExecutionsParams) ([]store.Execution, error) {
	var (
		where []string
		args  []any
	)
	if params.Job != "" {
		where, args = append(where, "job = ?"), append(args, params.Job)
	}
	if params.State != "" {
		where, args = append(where, "state = ?"), append(args, string(params.State))
	}
	if params.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, params.BeforeID)
	}
	query := `SELECT ` + execColumns + ` FROM executions`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ?`
	rows, err := s.read.QueryContext(ctx, query, append(args, pageLimit(params.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("list executions: %w", interpretError(err))
	}
	execs, err := scanExecutions(rows)
	if err != nil {
		return nil, fmt.Errorf("list executions: %w", interpretError(err))
	}
	return execs, nil
}

// ClaimExecutions assigns due PENDING executions to the agents Pick chooses. A Limit of 0 or
// no handlers claims nothing. Assignments of executions that were not among the candidates
// are ignored.
func (s *Store) ClaimExecutions(ctx context.Context, params store.ClaimParams) ([]store.Execution, error) {
	if params.Limit <= 0 || len(params.Handlers) == 0 {
		return nil, nil
	}
	if params.Pick == nil {
		return nil, errors.New("claim executions: no pick")
	}
	var claimed []store.Execution
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		claimed = nil
		handlers := make([]any, 0, len(params.Handlers))
		for _, h := range params.Handlers {
			handlers = append(handlers, h)
		}
		in := placeholders(len(params.Handlers))
		args := append(append([]any{now.UnixMicro()}, handlers...), params.Limit)
		candidates, err := queryExecutions(ctx, tx, `SELECT `+execColumns+` FROM executions INDEXED BY executions_pending
			WHERE state = 'pending' AND not_before <= ? AND handler IN (`+in+`)
			ORDER BY priority DESC, not_before, id LIMIT ?`, args...)
		if err != nil {
			return err
		}
		if room := params.Limit - len(candidates); room > 0 && params.Lookahead > 0 {
			// Work due soon fills what due work leaves, earliest first.
			args := append(append([]any{now.UnixMicro(), now.Add(params.Lookahead).UnixMicro()}, handlers...), room)
			ahead, err := queryExecutions(ctx, tx, `SELECT `+execColumns+` FROM executions
				WHERE state = 'pending' AND not_before > ? AND not_before <= ? AND handler IN (`+in+`)
				ORDER BY not_before, priority DESC, id LIMIT ?`, args...)
			if err != nil {
				return err
			}
			candidates = append(candidates, ahead...)
		}
		if len(candidates) == 0 {
			return nil
		}
		if candidates, err = prepareCandidates(ctx, tx, candidates, params.FanOut, now); err != nil || len(candidates) == 0 {
			return err
		}
		byID := make(map[string]*store.Execution, len(candidates))
		for i := range candidates {
			byID[candidates[i].ID] = &candidates[i]
		}
		for _, a := range params.Pick(candidates) {
			c := byID[a.ExecutionID]
			if c == nil || a.AgentID == "" {
				continue
			}
			if pin := c.Route.PinnedAgent; pin != "" && pin != a.AgentID {
				continue // made for another agent
			}
			// A lease runs from when the execution may start.
			exec, err := scanExecution(tx.QueryRowContext(ctx, `UPDATE executions
				SET state = 'assigned', agent_id = ?, lease_epoch = lease_epoch + 1,
					lease_deadline = ?, assigned_at = ?
				WHERE id = ? AND state = 'pending' RETURNING `+execColumns,
				a.AgentID, micros(params.LeaseDeadline(now, *c)), micros(now), a.ExecutionID))
			if errors.Is(err, sql.ErrNoRows) {
				continue // picked twice
			}
			if err != nil {
				return interpretError(err)
			}
			claimed = append(claimed, exec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim executions: %w", err)
	}
	return claimed, nil
}

// MarkStarted moves ASSIGNED executions whose epoch matches to RUNNING. A zero startedAt is
// now.
func (s *Store) MarkStarted(ctx context.Context, refs []store.ExecRef, startedAt time.Time) error {
	if len(refs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		if startedAt.IsZero() {
			startedAt = now
		}
		for _, ref := range refs {
			_, err := tx.ExecContext(ctx, `UPDATE executions
				SET state = 'running', started_at = COALESCE(started_at, ?)
				WHERE id = ? AND lease_epoch = ? AND state = 'assigned'`,
				micros(startedAt), ref.ID, ref.Epoch)
			if err != nil {
				return interpretError(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark started: %w", err)
	}
	return nil
}

// ExtendLeases moves the lease deadline of the agent's live executions whose epoch matches to
// now+lease.
func (s *Store) ExtendLeases(ctx context.Context, agentID string, refs []store.ExecRef, lease time.Duration) (int, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	var extended int
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		extended = 0
		deadline := micros(now.Add(lease))
		for _, ref := range refs {
			res, err := tx.ExecContext(ctx, `UPDATE executions SET lease_deadline = ?
				WHERE id = ? AND lease_epoch = ? AND agent_id = ? AND `+liveStates,
				deadline, ref.ID, ref.Epoch, agentID)
			if err != nil {
				return interpretError(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			extended += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("extend leases of agent %s: %w", agentID, err)
	}
	return extended, nil
}

// cancelRequestedError is the error of an execution cancelled on its release.
const cancelRequestedError = `{"message":"cancellation requested","kind":"Cancelled","retryable":false}`

// ReleaseExecutions puts live executions whose epoch matches back to PENDING, keeping their
// agent for history; one whose cancellation was requested becomes CANCELLED instead, or
// TIMED_OUT when the request was its fire's schedule-to-close timeout (ExpireDeadlines).
func (s *Store) ReleaseExecutions(ctx context.Context, refs []store.ExecRef) error {
	if len(refs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		for _, ref := range refs {
			_, err := tx.ExecContext(ctx, `UPDATE executions SET
					state = CASE WHEN cancel_requested = 0 THEN 'pending'
						WHEN json_extract(error, '$.kind') = '`+store.KindScheduleToCloseTimeout+`' THEN 'timed_out'
						ELSE 'cancelled' END,
					error = CASE cancel_requested WHEN 1 THEN COALESCE(error, ?) ELSE error END,
					finished_at = CASE cancel_requested WHEN 1 THEN ? ELSE NULL END,
					lease_deadline = NULL, started_at = NULL
				WHERE id = ? AND lease_epoch = ? AND `+liveStates,
				cancelRequestedError, micros(now), ref.ID, ref.Epoch)
			if err != nil {
				return interpretError(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release executions: %w", err)
	}
	return nil
}

// RequestCancel cancels a PENDING execution, flags a live one and leaves a finished one.
func (s *Store) RequestCancel(ctx context.Context, id string, reason string) (store.Execution, error) {
	if reason == "" {
		reason = "cancellation requested"
	}
	var exec store.Execution
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		var err error
		exec, err = getExecution(ctx, tx, id)
		if err != nil {
			return err
		}
		switch exec.State {
		case store.ExecPending:
			execErr, err := jsonText(store.ExecError{Message: reason, Kind: "Cancelled"})
			if err != nil {
				return err
			}
			exec, err = scanExecution(tx.QueryRowContext(ctx, `UPDATE executions
				SET state = 'cancelled', error = ?, finished_at = ?
				WHERE id = ? RETURNING `+execColumns, execErr, micros(now), id))
			return interpretError(err)
		case store.ExecAssigned, store.ExecRunning:
			exec, err = scanExecution(tx.QueryRowContext(ctx, `UPDATE executions
				SET cancel_requested = 1 WHERE id = ? RETURNING `+execColumns, id))
			return interpretError(err)
		}
		return nil
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("request cancel of execution %s: %w", id, err)
	}
	return exec, nil
}

// CancelRequested returns the flagged live executions of these agents, by id.
func (s *Store) CancelRequested(ctx context.Context, agentIDs []string) ([]store.ExecRef, error) {
	if len(agentIDs) == 0 {
		return nil, nil
	}
	args := make([]any, len(agentIDs))
	for i, id := range agentIDs {
		args[i] = id
	}
	rows, err := s.read.QueryContext(ctx, `SELECT id, lease_epoch FROM executions INDEXED BY executions_agent
		WHERE `+liveStates+` AND cancel_requested = 1 AND agent_id IN (`+placeholders(len(args))+`)
		ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("cancel requested: %w", interpretError(err))
	}
	defer rows.Close()
	var refs []store.ExecRef
	for rows.Next() {
		var ref store.ExecRef
		if err := rows.Scan(&ref.ID, &ref.Epoch); err != nil {
			return nil, fmt.Errorf("cancel requested: %w", err)
		}
		refs = append(refs, ref)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cancel requested: %w", interpretError(err))
	}
	return refs, nil
}

// InFlight counts live executions per agent.
func (s *Store) InFlight(ctx context.Context) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT agent_id, count(*) FROM executions INDEXED BY executions_agent
		WHERE `+liveStates+` GROUP BY agent_id`)
	if err != nil {
		return nil, fmt.Errorf("in flight: %w", interpretError(err))
	}
	defer rows.Close()
	counts := make(map[string]int)
	for rows.Next() {
		var (
			agent string
			n     int
		)
		if err := rows.Scan(&agent, &n); err != nil {
			return nil, fmt.Errorf("in flight: %w", err)
		}
		counts[agent] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("in flight: %w", interpretError(err))
	}
	return counts, nil
}

// NextNotBefore returns the earliest NotBefore after now of the pending executions of the
// handlers, or the zero time. It walks the partial index executions_not_before from now.
func (s *Store) NextNotBefore(ctx context.Context, handlers []string) (time.Time, error) {
	if len(handlers) == 0 {
		return time.Time{}, nil
	}
	args := make([]any, 0, len(handlers)+1)
	args = append(args, s.now().UnixMicro())
	for _, h := range handlers {
		args = append(args, h)
	}
	var next sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT not_before FROM executions INDEXED BY executions_not_before
		WHERE state = 'pending' AND not_before > ? AND handler IN (`+placeholders(len(handlers))+`)
		ORDER BY not_before LIMIT 1`, args...).Scan(&next)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, fmt.Errorf("next not-before: %w", interpretError(err))
	}
	return fromMicros(next), nil
}

// queryExecutions runs a query of execColumns rows in tx.
func queryExecutions(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]store.Execution, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, interpretError(err)
	}
	execs, err := scanExecutions(rows)
	return execs, interpretError(err)
}
