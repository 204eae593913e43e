package pg

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tockhq/tock/controlplane/store"
)

// CompleteExecutions applies results in one transaction, each only to a live execution with
// the same lease epoch, and schedules the retries that retry asks for. retry may be called
// more than once for an attempt when the transaction is retried.
//
// The results are decided in Go against the executions read (and locked) at the start, and
// written with one UPDATE per run of results: a run ends after a success whose job has
// dependents, whose firing may touch executions that later results name, so that every
// result sees what the ones before it did, as if they were applied one by one.
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
		outcomes = make([]store.CompletionOutcome, len(results))
		// Read (and lock, in id order) every execution reported on at once; current follows
		// the results decided, so that a second result for one attempt sees the first.
		execs, err := collectExecutions(tx.Query(ctx, `SELECT `+execColumns+` FROM executions
			WHERE id = ANY($1) ORDER BY id`+s.dialect.rowLock, ids))
		if err != nil {
			return err
		}
		current := make(map[string]store.Execution, len(execs))
		for _, e := range execs {
			current[e.ID] = e
		}
		upstream, err := upstreamJobs(ctx, tx, results, current)
		if err != nil {
			return err
		}
		var run []ending
		for i, c := range results {
			out, end, err := decide(current, c, now)
			if err != nil {
				return fmt.Errorf("execution %s: %w", c.ID, err)
			}
			outcomes[i] = out
			if end == nil {
				continue
			}
			end.index = i
			run = append(run, *end)
			if end.state == store.ExecSucceeded && upstream[current[c.ID].Job] {
				if err := s.endRun(ctx, tx, run, outcomes, current, upstream, retry, now); err != nil {
					return err
				}
				run = run[:0]
			}
		}
		return s.endRun(ctx, tx, run, outcomes, current, upstream, retry, now)
	})
	if err != nil {
		return nil, fmt.Errorf("complete executions: %w", interpretError(err))
	}
	return outcomes, nil
}

// ending is a result decided to apply: the values its execution ends with.
type ending struct {
	index                 int // in the results
	id                    string
	epoch                 int64
	state                 store.ExecState
	result                []byte
	contentType           string
	execErr               *string
	startedAt, finishedAt pgtype.Timestamptz
}

// decide applies one result to current, or says why not. It returns the values to write when
// the result applies; current then holds the execution as it ends, as far as the result says.
func decide(current map[string]store.Execution, c store.Completion, now time.Time) (store.CompletionOutcome, *ending, error) {
	out := store.CompletionOutcome{ExecRef: c.ExecRef}
	switch c.State {
	case store.ExecSucceeded, store.ExecFailed, store.ExecTimedOut, store.ExecCancelled:
	default:
		out.Reason = fmt.Sprintf("%q is not a result state", c.State)
		return out, nil, nil
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
		return out, nil, nil
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
	end := &ending{
		id: c.ID, epoch: c.Epoch, state: c.State, contentType: c.ResultContentType,
		startedAt:  pgtype.Timestamptz{Time: started, Valid: !started.IsZero()},
		finishedAt: pgtype.Timestamptz{Time: finished, Valid: true},
	}
	if len(c.Result) > 0 {
		end.result = c.Result
	}
	if c.Error != nil {
		b, err := jsonb(c.Error)
		if err != nil {
			return out, nil, fmt.Errorf("encode error: %w", err)
		}
		e := string(b)
		end.execErr = &e
	}
	cur.State = c.State
	current[c.ID] = cur
	return out, end, nil
}

// endRun writes a run of decided results with one statement, then, in the results' order, fires
// the dependents of each success (when its job has any, in upstream) and schedules the retry of
// each failure.
func (s *Store) endRun(ctx context.Context, tx pgx.Tx, run []ending, outcomes []store.CompletionOutcome, current map[string]store.Execution, upstream map[string]bool, retry store.RetryPlan, now time.Time) error {
	if len(run) == 0 {
		return nil
	}
	var (
		ids, states, contentTypes []string
		epochs                    []int64
		blobs                     [][]byte
		errs                      []*string
		started, finished         []pgtype.Timestamptz
	)
	for _, e := range run {
		ids, epochs, states = append(ids, e.id), append(epochs, e.epoch), append(states, string(e.state))
		blobs, contentTypes, errs = append(blobs, e.result), append(contentTypes, e.contentType), append(errs, e.execErr)
		started, finished = append(started, e.startedAt), append(finished, e.finishedAt)
	}
	ended, err := collectExecutions(tx.Query(ctx, `UPDATE executions AS e
		SET state = r.new_state, result = r.new_result, result_content_type = r.new_content_type,
			error = r.new_error::JSONB, started_at = r.new_started_at, finished_at = r.new_finished_at
		FROM unnest($1::TEXT[], $2::INT8[], $3::TEXT[], $4::BYTEA[], $5::TEXT[], $6::TEXT[],
				$7::TIMESTAMPTZ[], $8::TIMESTAMPTZ[])
			AS r(ref_id, ref_epoch, new_state, new_result, new_content_type, new_error,
				new_started_at, new_finished_at)
		WHERE e.id = ANY($1) AND e.id = r.ref_id AND e.lease_epoch = r.ref_epoch AND `+liveStates+`
		RETURNING `+execColumns,
		ids, epochs, states, blobs, contentTypes, errs, started, finished))
	if err != nil {
		return err
	}
	byID := make(map[string]store.Execution, len(ended))
	for _, e := range ended {
		byID[e.ID] = e
	}
	for _, e := range run {
		exec, ok := byID[e.id]
		if !ok {
			return fmt.Errorf("execution %s: %w", e.id, pgx.ErrNoRows)
		}
		current[e.id] = exec
		out := &outcomes[e.index]
		out.Applied = true
		out.Execution = exec
		switch {
		case exec.State == store.ExecSucceeded && upstream[exec.Job]:
			if err := s.fireDependents(ctx, tx, exec, now); err != nil {
				return fmt.Errorf("execution %s: %w", e.id, err)
			}
		case exec.State == store.ExecFailed || exec.State == store.ExecTimedOut:
			if out.RetryID, err = scheduleRetry(ctx, tx, exec, retry, now); err != nil {
				return fmt.Errorf("execution %s: %w", e.id, err)
			}
		}
	}
	return nil
}

// upstreamJobs returns which of the jobs of the executions reported as succeeded other jobs
// depend on.
func upstreamJobs(ctx context.Context, tx pgx.Tx, results []store.Completion, current map[string]store.Execution) (map[string]bool, error) {
	succeeded := make(map[string]bool)
	for _, c := range results {
		if e, ok := current[c.ID]; ok && c.State == store.ExecSucceeded {
			succeeded[e.Job] = true
		}
	}
	upstream := make(map[string]bool)
	if len(succeeded) == 0 {
		return upstream, nil
	}
	jobs := slices.Collect(maps.Keys(succeeded))
	rows, err := tx.Query(ctx, `SELECT DISTINCT upstream FROM job_dependencies WHERE upstream = ANY($1)`, jobs)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		upstream[n] = true
	}
	return upstream, nil
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
