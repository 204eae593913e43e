-- +goose Up
CREATE TABLE jobs (
    name         TEXT    NOT NULL PRIMARY KEY,
    handler      TEXT    NOT NULL,
    service      TEXT    NOT NULL DEFAULT '',
    selector     TEXT,
    schedule     TEXT,
    payload      BLOB,
    content_type TEXT    NOT NULL DEFAULT '',
    timeout_us   INTEGER NOT NULL DEFAULT 0,
    retry        TEXT    NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    paused       INTEGER NOT NULL DEFAULT 0,
    next_fire_at INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE jobs;
