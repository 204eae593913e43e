package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tockhq/tock/controlplane/store"
)

// CompleteExecutions applies results in one transaction, each only to a live execution with
// the same lease epoch, and schedules the retries that retry asks for. retry may be called
// more than once for an attempt when the transaction is retried.
func (s *Store) CompleteExecutions(ctx context.Context, results []store.Completion, retry store.RetryPlan) ([]store.CompletionOutcome, error) {
	if len(results) == 0 {
		return nil, nil
	}
	ids := make([]string, len(results))
	for i, c := range results {
		ids[i] = c.ID
	}
	var outcomes []store.CompletionOutcome
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		outcomes = make([]store.CompletionOutcome, 0, len(results))
		// Read (and lock, in id order) every execution reported on at once; current follows
		// the results applied, so that a second result for one attempt sees the first.
		execs, err := collectExecutions(tx.Query(ctx, `SELECT `+execColumns+` FROM executions
			WHERE id = ANY($1) ORDER BY id`+s.dialect.rowLock, ids))
		if err != nil {
			return err
		}
		current := make(map[string]store.Execution, len(execs))
		for _, e := range execs {
			current[e.ID] = e
		}
		for _, c := range results {
			out, err := s.complete(ctx, tx, current, c, retry, now)
			if err != nil {
				return fmt.Errorf("execution %s: %w", c.ID, err)
			}
			outcomes = append(outcomes, out)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("complete executions: %w", interpretError(err))
	}
	return outcomes, nil
}

// complete applies one result to current, or says why not.
func (s *Store) complete(ctx context.Context, tx pgx.Tx, current map[string]store.Execution, c store.Completion, retry store.RetryPlan, now time.Time) (store.CompletionOutcome, error) {
	out := store.CompletionOutcome{ExecRef: c.ExecRef}
	switch c.State {
	case store.ExecSucceeded, store.ExecFailed, store.ExecTimedOut, store.ExecCancelled:
	default:
		out.Reason = fmt.Sprintf("%q is not a result state", c.State)
		return out, nil
	}
	cur, ok := current[c.ID]
	switch {
	case !ok:
		out.Reason = "not found"
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
	ended, err := scanExecution(tx.QueryRow(ctx, `UPDATE executions
		SET state = $1, result = $2, result_content_type = $3, error = $4, started_at = $5,
			finished_at = $6
		WHERE id = $7 AND lease_epoch = $8 AND `+liveStates+` RETURNING `+execColumns,
		string(c.State), blob(c.Result), c.ResultContentType, execErr, ts(started),
		ts(finished), c.ID, c.Epoch))
	if err != nil {
		return out, err
	}
	current[c.ID] = ended
	out.Applied = true
	out.Execution = ended
	if c.State == store.ExecSucceeded {
		if err := s.fireDependents(ctx, tx, ended, now); err != nil {
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
// schedules their retries. A limit of 0 expires nothing. The expired executions are claimed
// (see dialect.claimLock), so concurrent callers take different ones.
func (s *Store) ExpireLeases(ctx context.Context, limit int, retry store.RetryPlan) ([]store.Execution, error) {
	if limit <= 0 {
		return nil, nil
	}
	var lost []store.Execution
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		lost = nil
		expired, err := collectExecutions(tx.Query(ctx, `SELECT `+execColumns+` FROM executions
			WHERE `+liveStates+` AND lease_deadline < $1
			ORDER BY lease_deadline, id LIMIT $2`+s.dialect.claimLock, now, limit))
		if err != nil {
			return err
		}
		for _, exec := range expired {
			execErr, err := jsonb(store.ExecError{
				Message:   "lease expired on agent " + exec.AgentID,
				Kind:      "LeaseExpired",
				Retryable: true,
			})
			if err != nil {
				return err
			}
			ended, err := scanExecution(tx.QueryRow(ctx, `UPDATE executions
				SET state = 'lost', error = $1, finished_at = $2
				WHERE id = $3 AND lease_epoch = $4 AND `+liveStates+` RETURNING `+execColumns,
				execErr, now, exec.ID, exec.LeaseEpoch))
			if err != nil {
				return err
			}
			if _, err := scheduleRetry(ctx, tx, ended, retry, now); err != nil {
				return fmt.Errorf("execution %s: %w", exec.ID, err)
			}
			lost = append(lost, ended)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire leases: %w", interpretError(err))
	}
	return lost, nil
}

// scheduleRetry asks retry whether the attempt that ended is retried and, when it is, creates
// the next attempt as a new PENDING execution. It returns the new execution's id, or "". An
// attempt whose cancellation was requested is never retried.
func scheduleRetry(ctx context.Context, tx pgx.Tx, ended store.Execution, retry store.RetryPlan, now time.Time) (string, error) {
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
