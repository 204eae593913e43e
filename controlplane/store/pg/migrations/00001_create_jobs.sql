-- +goose Up
CREATE TABLE IF NOT EXISTS jobs (
    name         TEXT        NOT NULL PRIMARY KEY,
    handler      TEXT        NOT NULL,
    service      TEXT        NOT NULL DEFAULT '',
    selector     JSONB,
    schedule     JSONB,
    payload      BYTEA,
    content_type TEXT        NOT NULL DEFAULT '',
    timeout_us   BIGINT      NOT NULL DEFAULT 0,
    retry        JSONB       NOT NULL,
    priority     BIGINT      NOT NULL DEFAULT 0,
    paused       BOOLEAN     NOT NULL DEFAULT false,
    next_fire_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT      NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS jobs;
