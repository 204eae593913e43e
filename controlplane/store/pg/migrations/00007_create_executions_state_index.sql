-- +goose Up
-- ListExecutions in one state, newest first.
CREATE INDEX IF NOT EXISTS executions_state ON executions (state, id);

-- +goose Down
DROP INDEX IF EXISTS executions_state;
