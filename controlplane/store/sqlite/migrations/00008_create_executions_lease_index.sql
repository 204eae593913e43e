-- +goose Up
-- ExpireLeases: live assignments by lease deadline.
CREATE INDEX executions_lease ON executions (lease_deadline, id) WHERE state IN ('assigned', 'running');

-- +goose Down
DROP INDEX executions_lease;
