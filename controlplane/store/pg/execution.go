package pg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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

// CreateExecutionOnce creates exec unless requestID already created an execution of the
// job, which it then returns. The key is written first, with ON CONFLICT DO NOTHING, and
// nothing is read before it: a conflict check takes no predicate lock, so triggers with keys
// do not conflict with each other at SERIALIZABLE (a look-up first would lock the index
// page that every new key of the job goes to). Only a repeated key reads the execution.
func (s *Store) CreateExecutionOnce(ctx context.Context, exec store.Execution, requestID string) (store.Execution, bool, error) {
	if err := exec.EnsureID(); err != nil {
		return store.Execution{}, false, fmt.Errorf("create execution of job %q: %w", exec.Job, err)
	}
	var (
		out     store.Execution
		created bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		tag, err := tx.Exec(ctx, `INSERT INTO trigger_requests (job, request_id, execution_id) VALUES ($1, $2, $3)
			ON CONFLICT (job, request_id) DO NOTHING`, exec.Job, requestID, exec.ID)
		if err != nil {
			return err
		}
		if created = tag.RowsAffected() == 1; created {
			out, err = insertExecution(ctx, tx, exec, now)
			return err
		}
		var id string
		if err := tx.QueryRow(ctx, `SELECT execution_id FROM trigger_requests WHERE job = $1 AND request_id = $2`,
			exec.Job, requestID).Scan(&id); err != nil {
			return err
		}
		out, err = getExecution(ctx, tx, id, "")
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
func insertExecution(ctx context.Context, tx pgx.Tx, e store.Execution, now time.Time) (store.Execution, error) {
	_, args, err := newExecutionRow(e, now)
	if err != nil {
		return store.Execution{}, err
	}
	created, err := scanExecution(tx.QueryRow(ctx, `INSERT INTO executions (`+execColumns+`)
		VALUES (`+params(1, len(args))+`) RETURNING `+execColumns, args...))
	return created, interpretError(err)
}

// insertExecutions inserts executions made by newExecutionRow, whose rows are given, in as
// few statements as the protocol's limit of 65,535 parameters allows.
func insertExecutions(ctx context.Context, tx pgx.Tx, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	cols := len(rows[0])
	per := math.MaxUint16 / cols
	for len(rows) > 0 {
		chunk := rows[:min(per, len(rows))]
		rows = rows[len(chunk):]
		var sql strings.Builder
		sql.WriteString(`INSERT INTO executions (` + execColumns + `) VALUES `)
		args := make([]any, 0, len(chunk)*cols)
		for i, row := range chunk {
			if i > 0 {
				sql.WriteString(", ")
			}
			sql.WriteString("(" + params(len(args)+1, cols) + ")")
			args = append(args, row...)
		}
		if _, err := tx.Exec(ctx, sql.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// newExecutionRow returns e as a new PENDING execution created at now, as stored, and its
// values in execColumns order.
func newExecutionRow(e store.Execution, now time.Time) (store.Execution, []any, error) {
	if err := e.EnsureID(); err != nil {
		return store.Execution{}, nil, err
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
		return store.Execution{}, nil, err
	}
	// As the database keeps them: times to the microsecond.
	for _, t := range []*time.Time{&e.CreatedAt, &e.NominalTime, &e.NotBefore, &e.StartDeadline, &e.CloseDeadline} {
		*t = micro(*t)
	}
	return e, args, nil
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
		if err != nil {
			return err
		}
		if room := params.Limit - len(candidates); room > 0 && params.Lookahead > 0 {
			// Work due soon fills what due work leaves, earliest first.
			ahead, err := collectExecutions(tx.Query(ctx, `SELECT `+execColumns+` FROM executions
				WHERE state = 'pending' AND not_before > $1 AND not_before <= $2 AND handler = ANY($3)
				ORDER BY not_before, priority DESC, id LIMIT $4`+s.dialect.claimLock,
				now, now.Add(params.Lookahead), params.Handlers, room))
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
		picked := make(map[string]bool, len(candidates))
		var ids, agents []string
		var deadlines []time.Time
		for _, a := range params.Pick(candidates) {
			c := byID[a.ExecutionID]
			if c == nil || a.AgentID == "" || picked[a.ExecutionID] {
				continue
			}
			if pin := c.Route.PinnedAgent; pin != "" && pin != a.AgentID {
				continue // made for another agent
			}
			picked[a.ExecutionID] = true
			ids = append(ids, a.ExecutionID)
			agents = append(agents, a.AgentID)
			// A lease runs from when the execution may start.
			deadlines = append(deadlines, params.LeaseDeadline(now, *c))
		}
		if len(ids) == 0 {
			return nil
		}
		// The rows are known from the candidates: only what the claim changes comes back.
		rows, err := tx.Query(ctx, `UPDATE executions
			SET state = 'assigned', agent_id = u.claim_agent, lease_epoch = lease_epoch + 1,
				lease_deadline = u.claim_deadline, assigned_at = $4
			FROM unnest($1::TEXT[], $2::TEXT[], $3::TIMESTAMPTZ[]) AS u (claim_id, claim_agent, claim_deadline)
			WHERE executions.id = u.claim_id AND executions.state = 'pending'
			RETURNING id, agent_id, lease_epoch, lease_deadline, assigned_at`, ids, agents, deadlines, now)
		if err != nil {
			return err
		}
		claimed, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Execution, error) {
			var id, agent string
			var epoch int64
			var lease, assigned time.Time
			if err := row.Scan(&id, &agent, &epoch, &lease, &assigned); err != nil {
				return store.Execution{}, err
			}
			e := *byID[id]
			e.State, e.AgentID, e.LeaseEpoch, e.LeaseDeadline, e.AssignedAt = store.ExecAssigned, agent, epoch, lease.UTC(), assigned.UTC()
			return e, nil
		})
		if err != nil {
			return err
		}
		// In Pick's order, as the caller placed them.
		order := make(map[string]int, len(ids))
		for i, id := range ids {
			order[id] = i
		}
		slices.SortFunc(claimed, func(a, b store.Execution) int { return order[a.ID] - order[b.ID] })
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim executions: %w", interpretError(err))
	}
	return claimed, nil
}

// MarkStarted moves ASSIGNED executions whose epoch matches to RUNNING, in one statement. A
// zero startedAt is now.
func (s *Store) MarkStarted(ctx context.Context, refs []store.ExecRef, startedAt time.Time) error {
	if len(refs) == 0 {
		return nil
	}
	ids, epochs := refArrays(refs)
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		at := startedAt
		if at.IsZero() {
			at = now
		}
		_, err := tx.Exec(ctx, `UPDATE executions AS e
			SET state = 'running', started_at = COALESCE(e.started_at, $1)
			FROM unnest($2::TEXT[], $3::INT8[]) AS r(ref_id, ref_epoch)
			WHERE e.id = ANY($2) AND e.id = r.ref_id AND e.lease_epoch = r.ref_epoch AND e.state = 'assigned'`,
			at, ids, epochs)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark started: %w", interpretError(err))
	}
	return nil
}

// refArrays returns the ids and epochs of refs as parallel arrays, in id order, for statements
// that join them with unnest: executions.id = ANY(ids) lets the planner find the rows by
// primary key whatever its statistics say of the agent's live executions, and the id order
// has rows locked in the order CompleteExecutions locks them, which keeps deadlocks between
// them rare.
func refArrays(refs []store.ExecRef) ([]string, []int64) {
	sorted := slices.SortedFunc(slices.Values(refs), func(a, b store.ExecRef) int { return strings.Compare(a.ID, b.ID) })
	ids, epochs := make([]string, len(sorted)), make([]int64, len(sorted))
	for i, r := range sorted {
		ids[i], epochs[i] = r.ID, r.Epoch
	}
	return ids, epochs
}

// ExtendLeases moves the lease deadline of the agent's live executions whose epoch matches to
// now+lease, in one statement.
func (s *Store) ExtendLeases(ctx context.Context, agentID string, refs []store.ExecRef, lease time.Duration) (int, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	ids, epochs := refArrays(refs)
	var extended int
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		tag, err := tx.Exec(ctx, `UPDATE executions AS e SET lease_deadline = $1
			FROM unnest($2::TEXT[], $3::INT8[]) AS r(ref_id, ref_epoch)
			WHERE e.id = ANY($2) AND e.id = r.ref_id AND e.lease_epoch = r.ref_epoch AND e.agent_id = $4
				AND `+liveStates,
			now.Add(lease), ids, epochs, agentID)
		extended = int(tag.RowsAffected())
		return err
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
// TIMED_OUT when the request was its fire's schedule-to-close timeout (ExpireDeadlines). One
// statement releases them all.
func (s *Store) ReleaseExecutions(ctx context.Context, refs []store.ExecRef) error {
	if len(refs) == 0 {
		return nil
	}
	ids, epochs := refArrays(refs)
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		_, err := tx.Exec(ctx, `UPDATE executions AS e SET
				state = CASE WHEN NOT e.cancel_requested THEN 'pending'
					WHEN e.error->>'kind' = '`+store.KindScheduleToCloseTimeout+`' THEN 'timed_out'
					ELSE 'cancelled' END,
				error = CASE WHEN e.cancel_requested THEN COALESCE(e.error, $1::JSONB) ELSE e.error END,
				finished_at = CASE WHEN e.cancel_requested THEN $2::TIMESTAMPTZ ELSE NULL END,
				lease_deadline = NULL, started_at = NULL
			FROM unnest($3::TEXT[], $4::INT8[]) AS r(ref_id, ref_epoch)
			WHERE e.id = ANY($3) AND e.id = r.ref_id AND e.lease_epoch = r.ref_epoch AND `+liveStates,
			cancelRequestedError, now, ids, epochs)
		return err
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
