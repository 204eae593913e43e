-- +goose Up
-- ListExecutions of one job, newest first; DeleteJob's cascade.
CREATE INDEX IF NOT EXISTS executions_job ON executions (job, id);

-- +goose Down
DROP INDEX IF EXISTS executions_job;
