-- +goose Up
-- CompleteExecutions: the jobs that depend on a job that succeeded.
CREATE INDEX IF NOT EXISTS job_dependencies_upstream ON job_dependencies (upstream, job);

-- +goose Down
DROP INDEX IF EXISTS job_dependencies_upstream;
