-- +goose Up
-- The job's routing when the execution was created (store.Routing as JSON); NULL is the default.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS routing JSONB;

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS routing;
