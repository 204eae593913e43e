-- +goose Up
-- PruneExecutions deletes the keys of the executions it deletes through this index.
CREATE INDEX trigger_requests_execution ON trigger_requests (execution_id);

-- +goose Down
DROP INDEX trigger_requests_execution;
