-- +goose Up
-- The log lines of each execution's handler. id is a UUIDv7 made by the store, not a
-- sequence (sequences are a point of contention on CockroachDB), so lines sort by the order
-- they were stored and spread over ranges by execution.
CREATE TABLE IF NOT EXISTS execution_logs (
    execution_id TEXT        NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    id           TEXT        NOT NULL,
    lease_epoch  BIGINT      NOT NULL,
    time         TIMESTAMPTZ NOT NULL,
    level        TEXT        NOT NULL DEFAULT '',
    message      TEXT        NOT NULL,
    PRIMARY KEY (execution_id, id)
);

-- +goose Down
DROP TABLE IF EXISTS execution_logs;
