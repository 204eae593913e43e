package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// CompleteExecutions applies results in one transaction, each only to a live execution with
// the same lease epoch, and schedules the retries that retry asks for.
func (s *Store) CompleteExecutions(ctx context.Context, results []store.Completion, retry store.RetryPlan) ([]store.CompletionOutcome, error) {
	if len(results) == 0 {
		return nil, nil
	}
	var outcomes []store.CompletionOutcome
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		outcomes = make([]store.CompletionOutcome, 0, len(results))
		for _, c := range results {
			out, err := complete(ctx, tx, c, retry, now)
			if err != nil {
				return fmt.Errorf("execution %s: %w", c.ID, err)
			}
			outcomes = append(outcomes, out)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("complete executions: %w", err)
	}
	return outcomes, nil
}

// complete applies one result, or says why not.
func complete(ctx context.Context, tx *sql.Tx, c store.Completion, retry store.RetryPlan, now time.Time) (store.CompletionOutcome, error) {
	out := store.CompletionOutcome{ExecRef: c.ExecRef}
	switch c.State {
	case store.ExecSucceeded, store.ExecFailed, store.ExecTimedOut, store.ExecCancelled:
	default:
		out.Reason = fmt.Sprintf("%q is not a result state", c.State)
		return out, nil
	}
	cur, err := getExecution(ctx, tx, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		out.Reason = "not found"
		return out, nil
	}
	if err != nil {
		return out, err
	}
	switch {
	case cur.State.Final():
		out.Reason = fmt.Sprintf("execution already %s", cur.State)
	case cur.LeaseEpoch != c.Epoch:
		out.Reason = fmt.Sprintf("stale lease epoch %d (current %d)", c.Epoch, cur.LeaseEpoch)
	case cur.State == store.ExecPending:
		out.Reason = "execution is pending, not assigned"
	}
	if out.Reason != "" {
		return out, nil
	}
	c = c.WithCloseTimeout(cur)

	started := c.StartedAt
	if !cur.StartedAt.IsZero() && (started.IsZero() || cur.StartedAt.Before(started)) {
		started = cur.StartedAt
	}
	finished := c.FinishedAt
	if finished.IsZero() {
		finished = now
	}
	execErr, err := jsonPtr(c.Error)
	if err != nil {
		return out, fmt.Errorf("encode error: %w", err)
	}
	ended, err := scanExecution(tx.QueryRowContext(ctx, `UPDATE executions
		SET state = ?, result = ?, result_content_type = ?, error = ?, started_at = ?, finished_at = ?
		WHERE id = ? AND lease_epoch = ? AND `+liveStates+` RETURNING `+execColumns,
		string(c.State), blob(c.Result), c.ResultContentType, execErr, micros(started),
		micros(finished), c.ID, c.Epoch))
	if err != nil {
		return out, interpretError(err)
	}
	out.Applied = true
	out.Execution = ended
	if c.State == store.ExecSucceeded {
		if err := fireDependents(ctx, tx, ended, now); err != nil {
			return out, err
		}
	}
	if c.State == store.ExecFailed || c.State == store.ExecTimedOut {
		next, err := scheduleRetry(ctx, tx, ended, retry, now)
		if err != nil {
			return out, err
		}
		out.RetryID = next
	}
	return out, nil
}

// ExpireLeases marks up to limit live executions whose lease deadline has passed as LOST and
// schedules their retries. A limit of 0 expires nothing.
func (s *Store) ExpireLeases(ctx context.Context, limit int, retry store.RetryPlan) ([]store.Execution, error) {
	if limit <= 0 {
		return nil, nil
	}
	var lost []store.Execution
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		lost = nil
		rows, err := tx.QueryContext(ctx, `SELECT `+execColumns+` FROM executions INDEXED BY executions_lease
			WHERE `+liveStates+` AND lease_deadline < ?
			ORDER BY lease_deadline, id LIMIT ?`, now.UnixMicro(), limit)
		if err != nil {
			return interpretError(err)
		}
		expired, err := scanExecutions(rows)
		if err != nil {
			return interpretError(err)
		}
		for _, exec := range expired {
			execErr, err := jsonText(store.ExecError{
				Message:   "lease expired on agent " + exec.AgentID,
				Kind:      "LeaseExpired",
				Retryable: true,
			})
			if err != nil {
				return err
			}
			ended, err := scanExecution(tx.QueryRowContext(ctx, `UPDATE executions
				SET state = 'lost', error = ?, finished_at = ?
				WHERE id = ? AND lease_epoch = ? AND `+liveStates+` RETURNING `+execColumns,
				execErr, micros(now), exec.ID, exec.LeaseEpoch))
			if err != nil {
				return interpretError(err)
			}
			if _, err := scheduleRetry(ctx, tx, ended, retry, now); err != nil {
				return fmt.Errorf("execution %s: %w", exec.ID, err)
			}
			lost = append(lost, ended)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire leases: %w", err)
	}
	return lost, nil
}

// scheduleRetry asks retry whether the attempt that ended is retried and, when it is, creates
// the next attempt as a new PENDING execution. It returns the new execution's id, or "". An
// attempt whose cancellation was requested is never retried.
func scheduleRetry(ctx context.Context, tx *sql.Tx, ended store.Execution, retry store.RetryPlan, now time.Time) (string, error) {
	if retry == nil || ended.CancelRequested {
		return "", nil
	}
	notBefore, ok := retry(ended)
	if !ok {
		return "", nil
	}
	if notBefore.IsZero() {
		notBefore = now
	}
	next, err := insertExecution(ctx, tx, store.Execution{
		Job:          ended.Job,
		Handler:      ended.Handler,
		Service:      ended.Service,
		Selector:     ended.Selector,
		Attempt:      ended.Attempt + 1,
		Trigger:      store.TriggerRetry,
		NominalTime:  ended.NominalTime,
		NotBefore:    notBefore,
		Priority:     ended.Priority,
		Payload:      ended.Payload,
		ContentType:  ended.ContentType,
		Timeout:      ended.Timeout,
		Retry:        ended.Retry,
		TraceContext: ended.TraceContext,
		TraceID:      ended.TraceID,
		RetryOf:      ended.ID,
		// A retry waits for an agent as long as the first attempt may, and ends with the
		// fire it belongs to.
		ScheduleToStartTimeout: ended.ScheduleToStartTimeout,
		CloseDeadline:          ended.CloseDeadline,
		Upstream:               ended.Upstream,
		// A retry is the same shard, for the same agent when its fire was broadcast.
		Route: ended.Route,
	}, now)
	if err != nil {
		return "", fmt.Errorf("create retry: %w", err)
	}
	return next.ID, nil
}
