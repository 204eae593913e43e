package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// syncDependencies makes job_dependencies hold the job's DependsOn, and refuses a DependsOn
// that names a job that does not exist or closes a cycle (*store.DependencyError). It runs in
// the transaction that writes the job.
func syncDependencies(ctx context.Context, tx *sql.Tx, job store.Job) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM job_dependencies WHERE job = ?`, job.Name); err != nil {
		return interpretError(err)
	}
	if len(job.DependsOn) == 0 {
		return nil
	}
	for _, up := range job.DependsOn {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE name = ?`, up).Scan(&n); err != nil {
			return interpretError(err)
		}
		if n == 0 && up != job.Name {
			return &store.DependencyError{Job: job.Name, Missing: up}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO job_dependencies (job, upstream) VALUES (?, ?)
			ON CONFLICT DO NOTHING`, job.Name, up); err != nil {
			return interpretError(err)
		}
	}
	// The edges reachable from the job, the new ones included: a cycle through the job is
	// among them.
	rows, err := tx.QueryContext(ctx, `WITH RECURSIVE reach(name) AS (
			SELECT ? UNION SELECT d.upstream FROM job_dependencies d JOIN reach ON d.job = reach.name
		)
		SELECT d.job, d.upstream FROM job_dependencies d JOIN reach ON d.job = reach.name
		ORDER BY d.job, d.upstream`, job.Name)
	if err != nil {
		return interpretError(err)
	}
	defer rows.Close()
	edges := map[string][]string{}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return err
		}
		edges[from] = append(edges[from], to)
	}
	if err := rows.Err(); err != nil {
		return interpretError(err)
	}
	if cycle := store.FindCycle(job.Name, edges); cycle != nil {
		return &store.DependencyError{Job: job.Name, Cycle: cycle}
	}
	return nil
}

// fireDependents fires, for the nominal time of an execution that just succeeded, every job
// that depends on its job and whose upstream jobs have now all succeeded for that time. The
// fire is recorded once per (job, nominal time), so a result applied twice, or two upstream
// jobs succeeding at once, fire a dependent job once.
func fireDependents(ctx context.Context, tx *sql.Tx, ended store.Execution, now time.Time) error {
	rows, err := tx.QueryContext(ctx, `SELECT job FROM job_dependencies INDEXED BY job_dependencies_upstream
		WHERE upstream = ? ORDER BY job`, ended.Job)
	if err != nil {
		return interpretError(err)
	}
	var dependents []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		dependents = append(dependents, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return interpretError(err)
	}
	for _, name := range dependents {
		job, err := getJob(ctx, tx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		upstream, ready, err := upstreamResults(ctx, tx, job, ended)
		if err != nil || !ready {
			return err
		}
		live, err := countLive(ctx, tx, []string{job.Name})
		if err != nil {
			return err
		}
		planned := store.PlanDependent(store.DueJob{Job: job, Live: live[job.Name]}, ended.NominalTime, upstream, now)
		if _, _, err := recordFire(ctx, tx, job, planned, now); err != nil {
			return fmt.Errorf("fire dependent job %q: %w", job.Name, err)
		}
	}
	return nil
}

// upstreamResults returns the results of the job's upstream jobs for ended's nominal time,
// in DependsOn order; ready is false while one of them has not succeeded for it.
func upstreamResults(ctx context.Context, tx *sql.Tx, job store.Job, ended store.Execution) ([]store.UpstreamResult, bool, error) {
	out := make([]store.UpstreamResult, 0, len(job.DependsOn))
	for _, up := range job.DependsOn {
		e := ended
		if up != ended.Job {
			var err error
			e, err = scanExecution(tx.QueryRowContext(ctx, `SELECT `+execColumns+` FROM executions
				INDEXED BY executions_succeeded
				WHERE job = ? AND nominal_time = ? AND state = 'succeeded'
				ORDER BY finished_at DESC, id DESC LIMIT 1`, up, micros(ended.NominalTime)))
			if errors.Is(err, sql.ErrNoRows) {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, interpretError(err)
			}
		}
		out = append(out, store.UpstreamResult{Job: up, ExecutionID: e.ID, Output: e.Result, ContentType: e.ResultContentType})
	}
	return out, true, nil
}

// countLive counts the PENDING, ASSIGNED and RUNNING executions of each job.
func countLive(ctx context.Context, tx *sql.Tx, jobs []string) (map[string]int, error) {
	live := make(map[string]int, len(jobs))
	if len(jobs) == 0 {
		return live, nil
	}
	names := slices.Compact(slices.Sorted(slices.Values(jobs)))
	args := make([]any, len(names))
	for i, name := range names {
		args[i] = name
	}
	rows, err := tx.QueryContext(ctx, `SELECT job, count(*) FROM executions INDEXED BY executions_live
		WHERE state IN ('pending', 'assigned', 'running') AND job IN (`+placeholders(len(args))+`)
		GROUP BY job`, args...)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			job string
			n   int
		)
		if err := rows.Scan(&job, &n); err != nil {
			return nil, err
		}
		live[job] = n
	}
	return live, interpretError(rows.Err())
}

// cancelLive cancels the live executions of a job that a new fire replaces, as RequestCancel
// would: PENDING ones at once, ASSIGNED and RUNNING ones by flagging them for their agent.
func cancelLive(ctx context.Context, tx *sql.Tx, job string, nominal, now time.Time) error {
	execErr, err := jsonText(store.ExecError{
		Message: "replaced by the fire at " + nominal.UTC().Format(time.RFC3339Nano) + " (overlap policy replace)",
		Kind:    "Cancelled",
	})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE executions
		SET state = 'cancelled', error = ?, finished_at = ?
		WHERE job = ? AND state = 'pending'`, execErr, micros(now), job); err != nil {
		return interpretError(err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE executions SET cancel_requested = 1
		WHERE job = ? AND state IN ('assigned', 'running')`, job)
	return interpretError(err)
}

func jobNames(jobs []store.Job) []string {
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.Name
	}
	return names
}
