-- +goose Up
-- ListExecutions of one job, newest first; DeleteJob's cascade.
CREATE INDEX executions_job ON executions (job, id);

-- +goose Down
DROP INDEX executions_job;
