package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tockhq/tock/controlplane/store"
)

// edge is one row of job_dependencies: From depends on To.
type edge struct {
	From, To string
}

// syncDependencies makes job_dependencies hold the job's DependsOn, and refuses a DependsOn
// that names a job that does not exist or closes a cycle (*store.DependencyError). It runs in
// the transaction that writes the job; at SERIALIZABLE, two transactions that would close a
// cycle between them each read the edges the other writes, and one of them is retried.
func syncDependencies(ctx context.Context, tx pgx.Tx, job store.Job) error {
	if _, err := tx.Exec(ctx, `DELETE FROM job_dependencies WHERE job = $1`, job.Name); err != nil {
		return err
	}
	if len(job.DependsOn) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT name FROM jobs WHERE name = ANY($1)`, job.DependsOn)
	if err != nil {
		return err
	}
	existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, up := range job.DependsOn {
		if !slices.Contains(existing, up) {
			return &store.DependencyError{Job: job.Name, Missing: up}
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO job_dependencies (job, upstream)
		SELECT $1, u FROM unnest($2::TEXT[]) AS u ON CONFLICT DO NOTHING`, job.Name, job.DependsOn); err != nil {
		return err
	}
	// The edges reachable from the job, the new ones included: a cycle through the job is
	// among them.
	rows, err = tx.Query(ctx, `WITH RECURSIVE reach(name) AS (
			SELECT $1::TEXT UNION SELECT d.upstream FROM job_dependencies d JOIN reach ON d.job = reach.name
		)
		SELECT d.job, d.upstream FROM job_dependencies d JOIN reach ON d.job = reach.name
		ORDER BY d.job, d.upstream`, job.Name)
	if err != nil {
		return err
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[edge])
	if err != nil {
		return err
	}
	edges := make(map[string][]string, len(list))
	for _, e := range list {
		edges[e.From] = append(edges[e.From], e.To)
	}
	if cycle := store.FindCycle(job.Name, edges); cycle != nil {
		return &store.DependencyError{Job: job.Name, Cycle: cycle}
	}
	return nil
}

// fireDependents fires, for the nominal time of an execution that just succeeded, every job
// that depends on its job and whose upstream jobs have now all succeeded for that time. The
// fire is recorded once per (job, nominal time), so a result applied twice, or two upstream
// jobs succeeding at once, fire a dependent job once: at SERIALIZABLE, of two transactions
// that each apply the last but one upstream result, one sees the other's and is retried.
func (s *Store) fireDependents(ctx context.Context, tx pgx.Tx, ended store.Execution, now time.Time) error {
	rows, err := tx.Query(ctx, `SELECT job FROM job_dependencies WHERE upstream = $1 ORDER BY job`, ended.Job)
	if err != nil {
		return err
	}
	dependents, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, name := range dependents {
		job, err := getJob(ctx, tx, name, s.dialect.rowLock)
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
func upstreamResults(ctx context.Context, tx pgx.Tx, job store.Job, ended store.Execution) ([]store.UpstreamResult, bool, error) {
	out := make([]store.UpstreamResult, 0, len(job.DependsOn))
	for _, up := range job.DependsOn {
		e := ended
		if up != ended.Job {
			var err error
			e, err = scanExecution(tx.QueryRow(ctx, `SELECT `+execColumns+` FROM executions
				WHERE job = $1 AND nominal_time = $2 AND state = 'succeeded'
				ORDER BY finished_at DESC, id DESC LIMIT 1`, up, ended.NominalTime))
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, err
			}
		}
		out = append(out, store.UpstreamResult{Job: up, ExecutionID: e.ID, Output: e.Result, ContentType: e.ResultContentType})
	}
	return out, true, nil
}

// countLive counts the PENDING, ASSIGNED and RUNNING executions of each job.
func countLive(ctx context.Context, tx pgx.Tx, jobs []string) (map[string]int, error) {
	live := make(map[string]int, len(jobs))
	if len(jobs) == 0 {
		return live, nil
	}
	rows, err := tx.Query(ctx, `SELECT job, count(*) FROM executions
		WHERE state IN ('pending', 'assigned', 'running') AND job = ANY($1)
		GROUP BY job`, jobs)
	if err != nil {
		return nil, err
	}
	type count struct {
		Job string
		N   int64
	}
	counts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[count])
	if err != nil {
		return nil, err
	}
	for _, c := range counts {
		live[c.Job] = int(c.N)
	}
	return live, nil
}

// cancelLive cancels the live executions of a job that a new fire replaces, as RequestCancel
// would: PENDING ones at once, ASSIGNED and RUNNING ones by flagging them for their agent.
func cancelLive(ctx context.Context, tx pgx.Tx, job string, nominal, now time.Time) error {
	execErr, err := jsonb(store.ExecError{
		Message: "replaced by the fire at " + nominal.UTC().Format(time.RFC3339Nano) + " (overlap policy replace)",
		Kind:    "Cancelled",
	})
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE executions SET state = 'cancelled', error = $1, finished_at = $2
		WHERE job = $3 AND state = 'pending'`, execErr, now, job); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE executions SET cancel_requested = true
		WHERE job = $1 AND state IN ('assigned', 'running')`, job)
	return err
}

func jobNames(jobs []store.Job) []string {
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.Name
	}
	return names
}
