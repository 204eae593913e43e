-- +goose Up
-- The status message the handler last reported with its progress.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS progress_message TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS progress_message;
