-- +goose Up
CREATE TABLE agents (
    id         TEXT    NOT NULL PRIMARY KEY,
    service    TEXT    NOT NULL DEFAULT '',
    address    TEXT    NOT NULL DEFAULT '',
    labels     TEXT,
    weight     INTEGER NOT NULL DEFAULT 0,
    capacity   INTEGER NOT NULL DEFAULT 0,
    handlers   TEXT,
    replica    TEXT    NOT NULL DEFAULT '',
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE agents;
