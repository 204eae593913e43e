-- +goose Up
-- When the fire the execution belongs to times out (schedule-to-close); NULL means never.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS close_deadline TIMESTAMPTZ;

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS close_deadline;
