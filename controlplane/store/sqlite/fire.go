package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// FireDueJobs claims due jobs, records their planned fires and creates the executions of the
// fires that dispatch, in one transaction. Only the write connection writes, so no two callers
// of one Store claim the same job at once; the fires' primary key keeps a fire at most once per
// (job, nominal time) even against another process on the same file.
//
// It returns the fires it recorded; a planned fire that was already recorded is left out. A
// Limit of 0 claims nothing. Advancing a job's NextFireAt is the scheduler's bookkeeping, not
// a change to the job: it leaves Version and UpdatedAt alone.
func (s *Store) FireDueJobs(ctx context.Context, params store.FireDueParams) ([]store.Fire, error) {
	if params.Limit <= 0 {
		return nil, nil
	}
	if params.Plan == nil {
		return nil, errors.New("fire due jobs: no plan")
	}
	var fires []store.Fire
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		fires = nil
		jobs, err := dueJobs(ctx, tx, now, now.Add(params.Horizon), params.Limit)
		if err != nil {
			return err
		}
		live, err := countLive(ctx, tx, jobNames(jobs))
		if err != nil {
			return err
		}
		for _, job := range jobs {
			plan := params.Plan(store.DueJob{Job: job, Live: live[job.Name]}, now)
			for _, planned := range plan.Fires {
				fire, recorded, err := recordFire(ctx, tx, job, planned, now)
				if err != nil {
					return fmt.Errorf("job %q: %w", job.Name, err)
				}
				if recorded {
					fires = append(fires, fire)
				}
			}
			_, err := tx.ExecContext(ctx, `UPDATE jobs SET next_fire_at = ? WHERE name = ?`,
				micros(plan.NextFireAt), job.Name)
			if err != nil {
				return interpretError(err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fire due jobs: %w", err)
	}
	return fires, nil
}

// dueJobs reads up to limit jobs due at or before until, earliest first; paused jobs only
// when they are due at or before now, since their fires are not held for a nominal time.
func dueJobs(ctx context.Context, tx *sql.Tx, now, until time.Time, limit int) ([]store.Job, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs INDEXED BY jobs_next_fire
		WHERE next_fire_at IS NOT NULL AND next_fire_at <= ? AND (paused = 0 OR next_fire_at <= ?)
		ORDER BY next_fire_at, name LIMIT ?`, until.UnixMicro(), now.UnixMicro(), limit)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	var jobs []store.Job
	for rows.Next() {
		job, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}
	return jobs, interpretError(rows.Err())
}

// recordFire inserts one planned fire unless its (job, nominal time) is recorded already, and
// creates its execution when it dispatches. recorded is false when the fire existed.
func recordFire(ctx context.Context, tx *sql.Tx, job store.Job, planned store.PlannedFire, now time.Time) (fire store.Fire, recorded bool, err error) {
	if planned.NominalTime.IsZero() {
		return store.Fire{}, false, errors.New("planned fire without a nominal time")
	}
	if planned.Outcome == store.FireDispatched && planned.Execution == nil {
		return store.Fire{}, false, fmt.Errorf("dispatched fire at %s without an execution", planned.NominalTime)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO fires (job, nominal_time, outcome, fired_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (job, nominal_time) DO NOTHING`,
		job.Name, micros(planned.NominalTime), string(planned.Outcome), micros(now))
	if err != nil {
		return store.Fire{}, false, interpretError(err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return store.Fire{}, false, err
	}
	fire = store.Fire{
		Job:         job.Name,
		NominalTime: time.UnixMicro(planned.NominalTime.UnixMicro()).UTC(),
		Outcome:     planned.Outcome,
		FiredAt:     now,
	}
	if planned.Outcome != store.FireDispatched {
		return fire, true, nil
	}
	if planned.Replace {
		if err := cancelLive(ctx, tx, job.Name, fire.NominalTime, now); err != nil {
			return store.Fire{}, false, fmt.Errorf("replace live executions: %w", err)
		}
	}

	exec := *planned.Execution
	exec.Job = job.Name
	if exec.NominalTime.IsZero() {
		exec.NominalTime = fire.NominalTime
	}
	if exec.Trigger == "" {
		exec.Trigger = store.TriggerSchedule
	}
	created, err := insertExecution(ctx, tx, exec, now)
	if err != nil {
		return store.Fire{}, false, fmt.Errorf("create execution of fire at %s: %w", fire.NominalTime, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE fires SET execution_id = ? WHERE job = ? AND nominal_time = ?`,
		created.ID, job.Name, micros(fire.NominalTime))
	if err != nil {
		return store.Fire{}, false, interpretError(err)
	}
	fire.ExecutionID = created.ID
	fire.Execution = &created
	return fire, true, nil
}

// ListFires returns a job's fires, newest nominal time first.
func (s *Store) ListFires(ctx context.Context, params store.ListFiresParams) ([]store.Fire, error) {
	before := int64(math.MaxInt64)
	if !params.Before.IsZero() {
		before = params.Before.UnixMicro()
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+fireColumns+` FROM fires
		WHERE job = ? AND nominal_time < ? ORDER BY nominal_time DESC LIMIT ?`,
		params.Job, before, pageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("list fires of %q: %w", params.Job, interpretError(err))
	}
	defer rows.Close()
	var fires []store.Fire
	for rows.Next() {
		fire, err := scanFire(rows)
		if err != nil {
			return nil, fmt.Errorf("list fires of %q: %w", params.Job, err)
		}
		fires = append(fires, fire)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list fires of %q: %w", params.Job, interpretError(err))
	}
	return fires, nil
}
