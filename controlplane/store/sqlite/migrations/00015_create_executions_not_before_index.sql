-- +goose Up
-- NextNotBefore: the earliest pending execution not yet due.
CREATE INDEX executions_not_before ON executions (not_before) WHERE state = 'pending';

-- +goose Down
DROP INDEX executions_not_before;
