-- +goose Up
-- ExpireDeadlines: pending executions by schedule-to-start deadline.
CREATE INDEX IF NOT EXISTS executions_start_deadline ON executions (start_deadline) WHERE state = 'pending' AND start_deadline IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS executions_start_deadline;
