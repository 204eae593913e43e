-- +goose Up
-- ListExecutions in one state, newest first.
CREATE INDEX executions_state ON executions (state, id);

-- +goose Down
DROP INDEX executions_state;
