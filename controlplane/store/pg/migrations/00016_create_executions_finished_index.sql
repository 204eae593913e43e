-- +goose Up
-- PruneExecutions: finished executions, oldest first.
CREATE INDEX IF NOT EXISTS executions_finished ON executions (finished_at) WHERE state IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'lost');

-- +goose Down
DROP INDEX IF EXISTS executions_finished;
