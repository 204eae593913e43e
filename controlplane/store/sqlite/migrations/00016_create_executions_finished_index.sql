-- +goose Up
-- PruneExecutions: finished executions, oldest first.
CREATE INDEX executions_finished ON executions (finished_at) WHERE state IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'lost');

-- +goose Down
DROP INDEX executions_finished;
