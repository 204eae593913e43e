-- +goose Up
-- InFlight, CancelRequested and ExtendLeases: live assignments by agent.
CREATE INDEX IF NOT EXISTS executions_agent ON executions (agent_id, cancel_requested) WHERE state IN ('assigned', 'running');

-- +goose Down
DROP INDEX IF EXISTS executions_agent;
