-- +goose Up
-- The results of the upstream executions a dependent execution ran after, as JSON.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS upstream JSONB;

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS upstream;
