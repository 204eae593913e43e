-- +goose Up
-- ExpireLeases: live assignments by lease deadline.
CREATE INDEX IF NOT EXISTS executions_lease ON executions (lease_deadline, id) WHERE state IN ('assigned', 'running');

-- +goose Down
DROP INDEX IF EXISTS executions_lease;
