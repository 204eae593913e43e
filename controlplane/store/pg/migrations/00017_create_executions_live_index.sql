-- +goose Up
-- PruneExecutions and PruneFires: whether a fire (job, nominal time) still has a live attempt.
CREATE INDEX IF NOT EXISTS executions_live ON executions (job, nominal_time) WHERE state IN ('pending', 'assigned', 'running');

-- +goose Down
DROP INDEX IF EXISTS executions_live;
