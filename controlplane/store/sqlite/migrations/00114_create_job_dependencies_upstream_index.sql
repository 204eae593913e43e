-- +goose Up
-- CompleteExecutions: the jobs that depend on a job that succeeded.
CREATE INDEX job_dependencies_upstream ON job_dependencies (upstream, job);

-- +goose Down
DROP INDEX job_dependencies_upstream;
