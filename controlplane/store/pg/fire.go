package pg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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
			_, err := tx.Exec(ctx, `UPDATE jobs SET next_fire_at = $1 WHERE name = $2`,
				ts(plan.NextFireAt), job.Name)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fire due jobs: %w", interpretError(err))
	}
	return fires, nil
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
	if planned.NominalTime.IsZero() {
		return store.Fire{}, false, errors.New("planned fire without a nominal time")
	}
	if planned.Outcome == store.FireDispatched && planned.Execution == nil {
		return store.Fire{}, false, fmt.Errorf("dispatched fire at %s without an execution", planned.NominalTime)
	}
	fire = store.Fire{
		Job:         job.Name,
		NominalTime: micro(planned.NominalTime),
		Outcome:     planned.Outcome,
		FiredAt:     now,
	}
	var exec store.Execution
	if planned.Outcome == store.FireDispatched {
		// The fire names its execution from the start; the execution is created only when
		// the fire is new.
		exec = *planned.Execution
		if exec.ID == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return store.Fire{}, false, err
			}
			exec.ID = id.String()
		}
		fire.ExecutionID = exec.ID
	}
	tag, err := tx.Exec(ctx, `INSERT INTO fires (job, nominal_time, outcome, execution_id, fired_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job, nominal_time) DO NOTHING`,
		job.Name, fire.NominalTime, string(fire.Outcome), fire.ExecutionID, now)
	if err != nil || tag.RowsAffected() == 0 {
		return store.Fire{}, false, err
	}
	if planned.Outcome != store.FireDispatched {
		return fire, true, nil
	}
	if planned.Replace {
		if err := cancelLive(ctx, tx, job.Name, fire.NominalTime, now); err != nil {
			return store.Fire{}, false, fmt.Errorf("replace live executions: %w", err)
		}
	}

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
	fire.Execution = &created
	return fire, true, nil
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
