-- +goose Up
-- InFlight, CancelRequested and ExtendLeases: live assignments by agent.
CREATE INDEX executions_agent ON executions (agent_id, cancel_requested) WHERE state IN ('assigned', 'running');

-- +goose Down
DROP INDEX executions_agent;
