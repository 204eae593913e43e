-- +goose Up
-- ExpireDeadlines: live executions by schedule-to-close deadline.
CREATE INDEX executions_close_deadline ON executions (close_deadline) WHERE state IN ('pending', 'assigned', 'running') AND close_deadline IS NOT NULL;

-- +goose Down
DROP INDEX executions_close_deadline;
