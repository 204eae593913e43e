-- +goose Up
-- Dependencies: whether a job succeeded for a nominal time.
CREATE INDEX executions_succeeded ON executions (job, nominal_time) WHERE state = 'succeeded';

-- +goose Down
DROP INDEX executions_succeeded;
