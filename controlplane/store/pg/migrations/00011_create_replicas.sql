-- +goose Up
-- The built-in registry of control-plane replicas: agent ownership is decided over the live ones.
CREATE TABLE IF NOT EXISTS replicas (
    id         TEXT        NOT NULL PRIMARY KEY,
    address    TEXT        NOT NULL DEFAULT '',
    last_seen  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS replicas;
