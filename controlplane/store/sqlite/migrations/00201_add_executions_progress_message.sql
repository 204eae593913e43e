-- +goose Up
-- The status message the handler last reported with its progress.
ALTER TABLE executions ADD COLUMN progress_message TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE executions DROP COLUMN progress_message;
