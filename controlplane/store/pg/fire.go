package pg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tockhq/tock/controlplane/store"
)

// FireDueJobs claims due jobs, records their planned fires and creates the executions of the
// fires that dispatch, in one transaction. The claim locks the jobs it reads (see
// dialect.claimLock), so no two callers claim the same job at once; the fires' primary key
// keeps a fire at most once per (job, nominal time) whatever happens.
//
// It returns the fires it recorded; a planned fire that was already recorded is left out. A
// Limit of 0 claims nothing. Advancing a job's NextFireAt is the scheduler's bookkeeping, not
// a change to the job: it leaves Version and UpdatedAt alone. Plan may be called more than
// once for a job when the transaction is retried.
func (s *Store) FireDueJobs(ctx context.Context, params store.FireDueParams) ([]store.Fire, error) {
	if params.Limit <= 0 {
		return nil, nil
	}
	if params.Plan == nil {
		return nil, errors.New("fire due jobs: no plan")
	}
	var fires []store.Fire
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		fires = nil
		jobs, err := s.dueJobs(ctx, tx, now, now.Add(params.Horizon), params.Limit)
		if err != nil {
			return err
		}
		live, err := countLive(ctx, tx, jobNames(jobs))
		if err != nil {
			return err
		}
		// Set-based: the fires of every job in one statement, the jobs' next fire times in
		// another, then the executions of the fires that were new.
		var (
			planned  []*plannedFire
			names    []string
			nextFire []pgtype.Timestamptz
		)
		for _, job := range jobs {
			plan := params.Plan(store.DueJob{Job: job, Live: live[job.Name]}, now)
			for _, pf := range plan.Fires {
				p, err := newPlannedFire(job, pf, now)
				if err != nil {
					return fmt.Errorf("job %q: %w", job.Name, err)
				}
				planned = append(planned, p)
			}
			names = append(names, job.Name)
			nextFire = append(nextFire, pgtype.Timestamptz{Time: plan.NextFireAt, Valid: !plan.NextFireAt.IsZero()})
		}
		if len(names) == 0 {
			return nil
		}
		if err := insertFires(ctx, tx, planned, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE jobs SET next_fire_at = u.next_fire
			FROM unnest($1::TEXT[], $2::TIMESTAMPTZ[]) AS u (job_name, next_fire)
			WHERE jobs.name = u.job_name`, names, nextFire); err != nil {
			return err
		}
		if err := createFireExecutions(ctx, tx, planned, now); err != nil {
			return err
		}
		for _, p := range planned {
			if p.recorded {
				fires = append(fires, p.fire)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fire due jobs: %w", interpretError(err))
	}
	return fires, nil
}

// plannedFire is one fire FireDueJobs records: the fire, its execution when it dispatches,
// and whether it was new.
type plannedFire struct {
	job      store.Job
	planned  store.PlannedFire
	fire     store.Fire
	exec     store.Execution
	recorded bool
}

// newPlannedFire checks a planned fire and names its execution.
func newPlannedFire(job store.Job, planned store.PlannedFire, now time.Time) (*plannedFire, error) {
	if planned.NominalTime.IsZero() {
		return nil, errors.New("planned fire without a nominal time")
	}
	if planned.Outcome == store.FireDispatched && planned.Execution == nil {
		return nil, fmt.Errorf("dispatched fire at %s without an execution", planned.NominalTime)
	}
	p := &plannedFire{job: job, planned: planned, fire: store.Fire{
		Job:         job.Name,
		NominalTime: micro(planned.NominalTime),
		Outcome:     planned.Outcome,
		FiredAt:     now,
	}}
	if planned.Outcome != store.FireDispatched {
		return p, nil
	}
	// The fire names its execution from the start; the execution is created only when the
	// fire is new.
	p.exec = *planned.Execution
	if err := p.exec.EnsureID(); err != nil {
		return nil, err
	}
	p.fire.ExecutionID = p.exec.ID
	p.exec.Job = job.Name
	if p.exec.NominalTime.IsZero() {
		p.exec.NominalTime = p.fire.NominalTime
	}
	if p.exec.Trigger == "" {
		p.exec.Trigger = store.TriggerSchedule
	}
	return p, nil
}

// insertFires inserts the planned fires in one statement, leaving out those whose (job,
// nominal time) is recorded already, and marks the new ones recorded.
func insertFires(ctx context.Context, tx pgx.Tx, planned []*plannedFire, now time.Time) error {
	if len(planned) == 0 {
		return nil
	}
	jobs := make([]string, len(planned))
	nominal := make([]time.Time, len(planned))
	outcomes := make([]string, len(planned))
	execIDs := make([]string, len(planned))
	byKey := make(map[fireKey]*plannedFire, len(planned))
	for i, p := range planned {
		jobs[i], nominal[i], outcomes[i], execIDs[i] = p.fire.Job, p.fire.NominalTime, string(p.fire.Outcome), p.fire.ExecutionID
		byKey[fireKey{p.fire.Job, p.fire.NominalTime.UnixMicro()}] = p
	}
	rows, err := tx.Query(ctx, `INSERT INTO fires (job, nominal_time, outcome, execution_id, fired_at)
		SELECT u.job, u.nominal_time, u.outcome, u.execution_id, $5
		FROM unnest($1::TEXT[], $2::TIMESTAMPTZ[], $3::TEXT[], $4::TEXT[]) AS u (job, nominal_time, outcome, execution_id)
		ON CONFLICT (job, nominal_time) DO NOTHING RETURNING job, nominal_time`,
		jobs, nominal, outcomes, execIDs, now)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var job string
		var at time.Time
		if err := rows.Scan(&job, &at); err != nil {
			return err
		}
		if p := byKey[fireKey{job, at.UnixMicro()}]; p != nil {
			p.recorded = true
		}
	}
	return rows.Err()
}

// fireKey identifies a fire: its job and nominal time in microseconds.
type fireKey struct {
	job     string
	nominal int64
}

// createFireExecutions creates the executions of the new dispatched fires, in order, in as
// few statements as it can: a fire that replaces the live executions first cancels them,
// which must see the executions created before it.
func createFireExecutions(ctx context.Context, tx pgx.Tx, planned []*plannedFire, now time.Time) error {
	var rows [][]any
	flush := func() error {
		err := insertExecutions(ctx, tx, rows)
		rows = nil
		return err
	}
	for _, p := range planned {
		if !p.recorded || p.fire.Outcome != store.FireDispatched {
			continue
		}
		if p.planned.Replace {
			if err := flush(); err != nil {
				return err
			}
			if err := cancelLive(ctx, tx, p.job.Name, p.fire.NominalTime, now); err != nil {
				return fmt.Errorf("job %q: replace live executions: %w", p.job.Name, err)
			}
		}
		created, row, err := newExecutionRow(p.exec, now)
		if err != nil {
			return fmt.Errorf("job %q: create execution of fire at %s: %w", p.job.Name, p.fire.NominalTime, err)
		}
		p.fire.Execution = &created
		rows = append(rows, row)
	}
	return flush()
}

// dueJobs claims up to limit jobs due at or before until, earliest first; paused jobs only
// when they are due at or before now, since their fires are not held for a nominal time.
func (s *Store) dueJobs(ctx context.Context, tx pgx.Tx, now, until time.Time, limit int) ([]store.Job, error) {
	rows, err := tx.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1 AND (NOT paused OR next_fire_at <= $2)
		ORDER BY next_fire_at, name LIMIT $3`+s.dialect.claimLock, until, now, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Job, error) { return scanJob(row) })
}

// recordFire inserts one planned fire unless its (job, nominal time) is recorded already, and
// creates its execution when it dispatches. recorded is false when the fire existed.
func recordFire(ctx context.Context, tx pgx.Tx, job store.Job, planned store.PlannedFire, now time.Time) (fire store.Fire, recorded bool, err error) {
	p, err := newPlannedFire(job, planned, now)
	if err != nil {
		return store.Fire{}, false, err
	}
	if err := insertFires(ctx, tx, []*plannedFire{p}, now); err != nil || !p.recorded {
		return store.Fire{}, false, err
	}
	if err := createFireExecutions(ctx, tx, []*plannedFire{p}, now); err != nil {
		return store.Fire{}, false, err
	}
	return p.fire, true, nil
}

// ListFires returns a job's fires, newest nominal time first.
func (s *Store) ListFires(ctx context.Context, params store.ListFiresParams) ([]store.Fire, error) {
	sql := `SELECT ` + fireColumns + ` FROM fires WHERE job = $1`
	args := []any{params.Job}
	if !params.Before.IsZero() {
		sql += ` AND nominal_time < $2`
		args = append(args, params.Before)
	}
	sql += ` ORDER BY nominal_time DESC LIMIT ` + fmt.Sprintf("$%d", len(args)+1)
	fires, err := query(ctx, s, scanFire, sql, append(args, pageLimit(params.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("list fires of %q: %w", params.Job, interpretError(err))
	}
	return fires, nil
}
