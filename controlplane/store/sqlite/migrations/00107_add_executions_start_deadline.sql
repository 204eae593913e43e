-- +goose Up
-- When a pending execution that no agent took times out (schedule-to-start); NULL means never.
ALTER TABLE executions ADD COLUMN start_deadline INTEGER;

-- +goose Down
ALTER TABLE executions DROP COLUMN start_deadline;
