package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// defaultLimit is the page size when a List call's Limit is 0.
const defaultLimit = 100

func pageLimit(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

// CreateJob stores a new job with version 1.
func (s *Store) CreateJob(ctx context.Context, job store.Job) (store.Job, error) {
	var created store.Job
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		job.CreatedAt, job.UpdatedAt, job.Version = now, now, 1
		args, err := jobArgs(job)
		if err != nil {
			return err
		}
		row := tx.QueryRowContext(ctx, `INSERT INTO jobs (`+jobColumns+`)
			VALUES (`+placeholders(len(args))+`) RETURNING `+jobColumns, args...)
		created, err = scanJob(row)
		if err != nil {
			return interpretError(err)
		}
		return syncDependencies(ctx, tx, created)
	})
	if err != nil {
		return store.Job{}, fmt.Errorf("create job %q: %w", job.Name, err)
	}
	return created, nil
}

// GetJob returns a job by name.
func (s *Store) GetJob(ctx context.Context, name string) (store.Job, error) {
	job, err := getJob(ctx, s.read, name)
	if err != nil {
		return store.Job{}, fmt.Errorf("get job %q: %w", name, err)
	}
	return job, nil
}

func getJob(ctx context.Context, q queryer, name string) (store.Job, error) {
	job, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE name = ?`, name))
	return job, interpretError(err)
}

// ListJobs returns jobs in name order after params.After.
func (s *Store) ListJobs(ctx context.Context, params store.ListJobsParams) ([]store.Job, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE name > ? ORDER BY name LIMIT ?`, params.After, pageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", interpretError(err))
	}
	defer rows.Close()
	var jobs []store.Job
	for rows.Next() {
		job, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		jobs = append(jobs, job)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", interpretError(err))
	}
	return jobs, nil
}

// UpdateJob reads the job, lets update change it and writes it back with its version
// incremented, in one transaction.
func (s *Store) UpdateJob(ctx context.Context, name string, update func(job *store.Job) error) (store.Job, error) {
	var updated store.Job
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		job, err := getJob(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := update(&job); err != nil {
			return callbackError{err}
		}
		job.UpdatedAt = now
		args, err := jobArgs(job)
		if err != nil {
			return err
		}
		policy, err := jobPolicyArgs(job)
		if err != nil {
			return err
		}
		routing, err := routingArg(job.Routing)
		if err != nil {
			return err
		}
		// Name, CreatedAt and Version are not taken from the callback.
		row := tx.QueryRowContext(ctx, `UPDATE jobs SET handler = ?, service = ?, selector = ?,
			schedule = ?, payload = ?, content_type = ?, timeout_us = ?, retry = ?, priority = ?,
			paused = ?, next_fire_at = ?, updated_at = ?, resumed_at = ?, `+jobPolicySet+`,
			routing = ?, version = version + 1
			WHERE name = ? RETURNING `+jobColumns, append(append(args[1:12:12], args[13], args[15]), append(policy, routing, name)...)...)
		updated, err = scanJob(row)
		if err != nil {
			return interpretError(err)
		}
		return syncDependencies(ctx, tx, updated)
	})
	if cb, ok := errors.AsType[callbackError](err); ok {
		return store.Job{}, cb.err
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("update job %q: %w", name, err)
	}
	return updated, nil
}

// DeleteJob deletes a job; its fires and executions go with it (ON DELETE CASCADE).
func (s *Store) DeleteJob(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx *sql.Tx, _ time.Time) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE name = ?`, name)
		if err != nil {
			return interpretError(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete job %q: %w", name, err)
	}
	return nil
}
