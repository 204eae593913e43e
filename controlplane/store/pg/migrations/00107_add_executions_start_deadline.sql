-- +goose Up
-- When a pending execution that no agent took times out (schedule-to-start); NULL means never.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS start_deadline TIMESTAMPTZ;

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS start_deadline;
