-- +goose Up
-- When the last progress report was recorded (database clock).
ALTER TABLE executions ADD COLUMN IF NOT EXISTS progress_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS progress_at;
