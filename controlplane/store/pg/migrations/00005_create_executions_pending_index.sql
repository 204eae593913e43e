-- +goose Up
-- ClaimExecutions: pending executions, highest priority first, then oldest.
CREATE INDEX IF NOT EXISTS executions_pending ON executions (priority DESC, not_before, id) WHERE state = 'pending';

-- +goose Down
DROP INDEX IF EXISTS executions_pending;
