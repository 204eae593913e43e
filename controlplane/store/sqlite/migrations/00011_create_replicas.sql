-- +goose Up
-- The built-in registry of control-plane replicas: agent ownership is decided over the live ones.
CREATE TABLE replicas (
    id         TEXT    NOT NULL PRIMARY KEY,
    address    TEXT    NOT NULL DEFAULT '',
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE replicas;
