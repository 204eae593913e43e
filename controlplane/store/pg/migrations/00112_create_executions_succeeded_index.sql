-- +goose Up
-- Dependencies: whether a job succeeded for a nominal time.
CREATE INDEX IF NOT EXISTS executions_succeeded ON executions (job, nominal_time) WHERE state = 'succeeded';

-- +goose Down
DROP INDEX IF EXISTS executions_succeeded;
