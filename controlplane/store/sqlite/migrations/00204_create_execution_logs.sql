-- +goose Up
-- The log lines of each execution's handler. id is a UUIDv7 made by the store (no sequence),
-- so lines sort by the order they were stored.
CREATE TABLE execution_logs (
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    id           TEXT    NOT NULL,
    lease_epoch  INTEGER NOT NULL,
    time         INTEGER NOT NULL,
    level        TEXT    NOT NULL DEFAULT '',
    message      TEXT    NOT NULL,
    PRIMARY KEY (execution_id, id)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE execution_logs;
