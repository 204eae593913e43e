-- +goose Up
-- When the fire the execution belongs to times out (schedule-to-close); NULL means never.
ALTER TABLE executions ADD COLUMN close_deadline INTEGER;

-- +goose Down
ALTER TABLE executions DROP COLUMN close_deadline;
