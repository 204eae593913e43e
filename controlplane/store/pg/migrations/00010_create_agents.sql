-- +goose Up
CREATE TABLE IF NOT EXISTS agents (
    id         TEXT        NOT NULL PRIMARY KEY,
    service    TEXT        NOT NULL DEFAULT '',
    address    TEXT        NOT NULL DEFAULT '',
    labels     JSONB,
    weight     BIGINT      NOT NULL DEFAULT 0,
    capacity   BIGINT      NOT NULL DEFAULT 0,
    handlers   JSONB,
    replica    TEXT        NOT NULL DEFAULT '',
    last_seen  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS agents;
