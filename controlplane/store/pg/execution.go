package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tockhq/tock/controlplane/store"
)

// liveStates is the SQL condition of an execution held by an agent; the partial indexes
// executions_lease and executions_agent have the same predicate.
const liveStates = `state IN ('assigned', 'running')`

// CreateExecution stores a new PENDING execution.
func (s *Store) CreateExecution(ctx context.Context, exec store.Execution) (store.Execution, error) {
	var created store.Execution
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		var err error
		created, err = insertExecution(ctx, tx, exec, now)
		return err
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("create execution of job %q: %w", exec.Job, interpretError(err))
	}
	return created, nil
}

// insertExecution stores e as a new PENDING execution, never assigned: it generates the id when
// empty, starts the attempt count at 1 and the trigger at manual, defaults the nominal time to
// now and NotBefore to the nominal time, and sets CreatedAt.
func insertExecution(ctx context.Context, tx pgx.Tx, e store.Execution, now time.Time) (store.Execution, error) {
	if e.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return store.Execution{}, err
		}
		e.ID = id.String()
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
	created, err := scanExecution(tx.QueryRow(ctx, `INSERT INTO executions (`+execColumns+`)
		VALUES (`+params(1, len(args))+`) RETURNING `+execColumns, args...))
	return created, interpretError(err)
}

// GetExecution returns an execution by id.
func (s *Store) GetExecution(ctx context.Context, id string) (store.Execution, error) {
	var exec store.Execution
	err := s.retry(ctx, func() (err error) {
		exec, err = getExecution(ctx, s.pool, id, "")
		return err
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("get execution %s: %w", id, err)
	}
	return exec, nil
}

// getExecution reads an execution; lock ends the statement (a row lock, or "").
func getExecution(ctx context.Context, q querier, id, lock string) (store.Execution, error) {
	exec, err := scanExecution(q.QueryRow(ctx, `SELECT `+execColumns+` FROM executions WHERE id = $1`+lock, id))
	return exec, interpretError(err)
}

// ListExecutions returns executions newest first.
func (s *Store) ListExecutions(ctx context.Context, params store.ListExecutionsParams) ([]store.Execution, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if params.Job != "" {
		add("job = $%d", params.Job)
	}
	if params.State != "" {
		add("state = $%d", string(params.State))
	}
	if params.BeforeID != "" {
		add("id < $%d", params.BeforeID)
	}
	sql := `SELECT ` + execColumns + ` FROM executions`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, pageLimit(params.Limit))
	sql += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	execs, err := query(ctx, s, scanExecution, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list executions: %w", interpretError(err))
	}
	return execs, nil
}

// ClaimExecutions assigns due PENDING executions to the agents Pick chooses. A Limit of 0 or
// no handlers claims nothing. Assignments of executions that were not among the candidates
// are ignored. The candidates are claimed (see dialect.claimLock) so that concurrent callers
// are offered different executions; Pick may be called more than once when the transaction
// is retried.
func (s *Store) ClaimExecutions(ctx context.Context, params store.ClaimParams) ([]store.Execution, error) {
	if params.Limit <= 0 || len(params.Handlers) == 0 {
		return nil, nil
	}
	if params.Pick == nil {
		return nil, errors.New("claim executions: no pick")
	}
	var claimed []store.Execution
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		claimed = nil
		candidates, err := collectExecutions(tx.Query(ctx, `SELECT `+execColumns+` FROM executions
			WHERE state = 'pending' AND not_before <= $1 AND handler = ANY($2)
			ORDER BY priority DESC, not_before, id LIMIT $3`+s.dialect.claimLock,
			now, params.Handlers, params.Limit))
		if err != nil || len(candidates) == 0 {
			return err
		}
		if candidates, err = prepareCandidates(ctx, tx, candidates, params.FanOut, now); err != nil || len(candidates) == 0 {
			return err
		}
		isCandidate := make(map[string]bool, len(candidates))
		pinned := make(map[string]string)
		for _, c := range candidates {
			isCandidate[c.ID] = true
			if c.Route.PinnedAgent != "" {
				pinned[c.ID] = c.Route.PinnedAgent
			}
		}
		deadline := now.Add(params.Lease)
		var batch pgx.Batch
		for _, a := range params.Pick(candidates) {
			if !isCandidate[a.ExecutionID] || a.AgentID == "" {
				continue
			}
			if pin, ok := pinned[a.ExecutionID]; ok && pin != a.AgentID {
				continue // made for another agent
			}
			// An execution picked twice is pending no more the second time.
			batch.Queue(`UPDATE executions
				SET state = 'assigned', agent_id = $1, lease_epoch = lease_epoch + 1,
					lease_deadline = $2, assigned_at = $3
				WHERE id = $4 AND state = 'pending' RETURNING `+execColumns,
				a.AgentID, deadline, now, a.ExecutionID).QueryRow(func(row pgx.Row) error {
				exec, err := scanExecution(row)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil
				}
				if err != nil {
					return err
				}
				claimed = append(claimed, exec)
				return nil
			})
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("claim executions: %w", interpretError(err))
	}
	return claimed, nil
}

// MarkStarted moves ASSIGNED executions whose epoch matches to RUNNING. A zero startedAt is
// now.
func (s *Store) MarkStarted(ctx context.Context, refs []store.ExecRef, startedAt time.Time) error {
	if len(refs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		at := startedAt
		if at.IsZero() {
			at = now
		}
		var batch pgx.Batch
		for _, ref := range refs {
			batch.Queue(`UPDATE executions
				SET state = 'running', started_at = COALESCE(started_at, $1)
				WHERE id = $2 AND lease_epoch = $3 AND state = 'assigned'`,
				at, ref.ID, ref.Epoch)
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return fmt.Errorf("mark started: %w", interpretError(err))
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
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		extended = 0
		deadline := now.Add(lease)
		var batch pgx.Batch
		for _, ref := range refs {
			batch.Queue(`UPDATE executions SET lease_deadline = $1
				WHERE id = $2 AND lease_epoch = $3 AND agent_id = $4 AND `+liveStates,
				deadline, ref.ID, ref.Epoch, agentID).Exec(func(tag pgconn.CommandTag) error {
				extended += int(tag.RowsAffected())
				return nil
			})
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("extend leases of agent %s: %w", agentID, interpretError(err))
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
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		var batch pgx.Batch
		for _, ref := range refs {
			batch.Queue(`UPDATE executions SET
					state = CASE WHEN NOT cancel_requested THEN 'pending'
						WHEN error->>'kind' = '`+store.KindScheduleToCloseTimeout+`' THEN 'timed_out'
						ELSE 'cancelled' END,
					error = CASE WHEN cancel_requested THEN COALESCE(error, $1::JSONB) ELSE error END,
					finished_at = CASE WHEN cancel_requested THEN $2::TIMESTAMPTZ ELSE NULL END,
					lease_deadline = NULL, started_at = NULL
				WHERE id = $3 AND lease_epoch = $4 AND `+liveStates,
				cancelRequestedError, now, ref.ID, ref.Epoch)
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return fmt.Errorf("release executions: %w", interpretError(err))
	}
	return nil
}

// RequestCancel cancels a PENDING execution, flags a live one and leaves a finished one.
func (s *Store) RequestCancel(ctx context.Context, id string, reason string) (store.Execution, error) {
	if reason == "" {
		reason = "cancellation requested"
	}
	var exec store.Execution
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		var err error
		exec, err = getExecution(ctx, tx, id, s.dialect.rowLock)
		if err != nil {
			return err
		}
		switch exec.State {
		case store.ExecPending:
			execErr, err := jsonb(store.ExecError{Message: reason, Kind: "Cancelled"})
			if err != nil {
				return err
			}
			exec, err = scanExecution(tx.QueryRow(ctx, `UPDATE executions
				SET state = 'cancelled', error = $1, finished_at = $2
				WHERE id = $3 RETURNING `+execColumns, execErr, now, id))
			return err
		case store.ExecAssigned, store.ExecRunning:
			exec, err = scanExecution(tx.QueryRow(ctx, `UPDATE executions
				SET cancel_requested = true WHERE id = $1 RETURNING `+execColumns, id))
			return err
		}
		return nil
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("request cancel of execution %s: %w", id, interpretError(err))
	}
	return exec, nil
}

// CancelRequested returns the flagged live executions of these agents, by id.
func (s *Store) CancelRequested(ctx context.Context, agentIDs []string) ([]store.ExecRef, error) {
	if len(agentIDs) == 0 {
		return nil, nil
	}
	refs, err := query(ctx, s, func(row pgx.Row) (store.ExecRef, error) {
		var ref store.ExecRef
		err := row.Scan(&ref.ID, &ref.Epoch)
		return ref, err
	}, `SELECT id, lease_epoch FROM executions
		WHERE `+liveStates+` AND agent_id = ANY($1) AND cancel_requested
		ORDER BY id`, agentIDs)
	if err != nil {
		return nil, fmt.Errorf("cancel requested: %w", interpretError(err))
	}
	return refs, nil
}

// agentCount is one row of InFlight.
type agentCount struct {
	agent string
	n     int64
}

// InFlight counts live executions per agent.
func (s *Store) InFlight(ctx context.Context) (map[string]int, error) {
	rows, err := query(ctx, s, func(row pgx.Row) (agentCount, error) {
		var c agentCount
		err := row.Scan(&c.agent, &c.n)
		return c, err
	}, `SELECT agent_id, count(*) FROM executions WHERE `+liveStates+` GROUP BY agent_id`)
	if err != nil {
		return nil, fmt.Errorf("in flight: %w", interpretError(err))
	}
	counts := make(map[string]int, len(rows))
	for _, c := range rows {
		counts[c.agent] = int(c.n)
	}
	return counts, nil
}

// NextNotBefore returns the earliest NotBefore after now of the pending executions of the
// handlers, or the zero time. It walks the partial index executions_not_before from now.
func (s *Store) NextNotBefore(ctx context.Context, handlers []string) (time.Time, error) {
	if len(handlers) == 0 {
		return time.Time{}, nil
	}
	times, err := query(ctx, s, func(row pgx.Row) (time.Time, error) {
		var t pgtype.Timestamptz
		err := row.Scan(&t)
		return fromTS(t), err
	}, `SELECT not_before FROM executions
		WHERE state = 'pending' AND not_before > now() AND handler = ANY($1)
		ORDER BY not_before LIMIT 1`, handlers)
	if err != nil {
		return time.Time{}, fmt.Errorf("next not-before: %w", interpretError(err))
	}
	if len(times) == 0 {
		return time.Time{}, nil
	}
	return times[0], nil
}
