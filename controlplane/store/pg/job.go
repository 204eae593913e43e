package pg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

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
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		job.CreatedAt, job.UpdatedAt, job.Version = now, now, 1
		args, err := jobArgs(job)
		if err != nil {
			return err
		}
		created, err = scanJob(tx.QueryRow(ctx, `INSERT INTO jobs (`+jobColumns+`)
			VALUES (`+params(1, len(args))+`) RETURNING `+jobColumns, args...))
		if err != nil {
			return err
		}
		return syncDependencies(ctx, tx, created)
	})
	if err != nil {
		return store.Job{}, fmt.Errorf("create job %q: %w", job.Name, interpretError(err))
	}
	return created, nil
}

// GetJob returns a job by name.
func (s *Store) GetJob(ctx context.Context, name string) (store.Job, error) {
	var job store.Job
	err := s.retry(ctx, func() (err error) {
		job, err = getJob(ctx, s.pool, name, "")
		return err
	})
	if err != nil {
		return store.Job{}, fmt.Errorf("get job %q: %w", name, err)
	}
	return job, nil
}

// getJob reads a job; lock ends the statement (a row lock, or "").
func getJob(ctx context.Context, q querier, name, lock string) (store.Job, error) {
	job, err := scanJob(q.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE name = $1`+lock, name))
	return job, interpretError(err)
}

// ListJobs returns jobs in name order after params.After.
func (s *Store) ListJobs(ctx context.Context, params store.ListJobsParams) ([]store.Job, error) {
	jobs, err := query(ctx, s, scanJob, `SELECT `+jobColumns+` FROM jobs
		WHERE name > $1 ORDER BY name LIMIT $2`, params.After, pageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", interpretError(err))
	}
	return jobs, nil
}

// UpdateJob reads the job, lets update change it and writes it back with its version
// incremented, in one transaction. update may be called more than once when the transaction
// is retried.
func (s *Store) UpdateJob(ctx context.Context, name string, update func(job *store.Job) error) (store.Job, error) {
	var updated store.Job
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		job, err := getJob(ctx, tx, name, s.dialect.rowLock)
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
		updated, err = scanJob(tx.QueryRow(ctx, `UPDATE jobs SET handler = $1, service = $2,
			selector = $3, schedule = $4, payload = $5, content_type = $6, timeout_us = $7,
			retry = $8, priority = $9, paused = $10, next_fire_at = $11, updated_at = $12,
			resumed_at = $13, `+jobPolicySet(15)+`, routing = $`+strconv.Itoa(15+len(policy))+`,
			version = version + 1
			WHERE name = $14 RETURNING `+jobColumns, append(append(append(args[1:12:12], args[13], args[15], name), policy...), routing)...))
		if err != nil {
			return err
		}
		return syncDependencies(ctx, tx, updated)
	})
	if cb, ok := errors.AsType[callbackError](err); ok {
		return store.Job{}, cb.err
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("update job %q: %w", name, interpretError(err))
	}
	return updated, nil
}

// DeleteJob deletes a job; its fires and executions go with it (ON DELETE CASCADE).
func (s *Store) DeleteJob(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx pgx.Tx, _ time.Time) error {
		tag, err := tx.Exec(ctx, `DELETE FROM jobs WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete job %q: %w", name, interpretError(err))
	}
	return nil
}
