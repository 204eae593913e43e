-- +goose Up
-- ListExecutions in one state, newest first. The hot queries name their partial indexes with
-- INDEXED BY, so that this one, which the planner would otherwise prefer for state = ?, does
-- not take their place.
CREATE INDEX executions_state ON executions (state, id);

-- +goose Down
DROP INDEX executions_state;
