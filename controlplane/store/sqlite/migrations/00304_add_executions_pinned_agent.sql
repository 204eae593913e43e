-- +goose Up
-- The only agent that may run the execution (broadcast); '' when any may.
ALTER TABLE executions ADD COLUMN pinned_agent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE executions DROP COLUMN pinned_agent;
