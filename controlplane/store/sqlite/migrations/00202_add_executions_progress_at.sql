-- +goose Up
-- When the last progress report was recorded (database clock).
ALTER TABLE executions ADD COLUMN progress_at INTEGER;

-- +goose Down
ALTER TABLE executions DROP COLUMN progress_at;
