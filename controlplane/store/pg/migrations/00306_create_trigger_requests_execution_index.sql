-- +goose Up
-- Deleting an execution deletes its key through this index.
CREATE INDEX IF NOT EXISTS trigger_requests_execution ON trigger_requests (execution_id);

-- +goose Down
DROP INDEX IF EXISTS trigger_requests_execution;
