-- +goose Up
-- NextNotBefore: the earliest pending execution not yet due.
CREATE INDEX IF NOT EXISTS executions_not_before ON executions (not_before) WHERE state = 'pending';

-- +goose Down
DROP INDEX IF EXISTS executions_not_before;
