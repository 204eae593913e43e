-- +goose Up
-- The only agent that may run the execution (broadcast); '' when any may.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS pinned_agent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS pinned_agent;
