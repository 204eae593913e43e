-- +goose Up
CREATE TABLE IF NOT EXISTS executions (
    id                  TEXT        NOT NULL PRIMARY KEY,
    job                 TEXT        NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    handler             TEXT        NOT NULL,
    service             TEXT        NOT NULL DEFAULT '',
    selector            JSONB,
    attempt             BIGINT      NOT NULL,
    state               TEXT        NOT NULL CHECK (state IN ('pending', 'assigned', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'lost')),
    trigger_kind        TEXT        NOT NULL,
    nominal_time        TIMESTAMPTZ NOT NULL,
    not_before          TIMESTAMPTZ NOT NULL,
    priority            BIGINT      NOT NULL DEFAULT 0,
    payload             BYTEA,
    content_type        TEXT        NOT NULL DEFAULT '',
    timeout_us          BIGINT      NOT NULL DEFAULT 0,
    retry               JSONB       NOT NULL,
    agent_id            TEXT        NOT NULL DEFAULT '',
    lease_epoch         BIGINT      NOT NULL DEFAULT 0,
    lease_deadline      TIMESTAMPTZ,
    cancel_requested    BOOLEAN     NOT NULL DEFAULT false,
    result              BYTEA,
    result_content_type TEXT        NOT NULL DEFAULT '',
    error               JSONB,
    created_at          TIMESTAMPTZ NOT NULL,
    assigned_at         TIMESTAMPTZ,
    started_at          TIMESTAMPTZ,
    finished_at         TIMESTAMPTZ,
    trace_context       TEXT        NOT NULL DEFAULT '',
    trace_id            TEXT        NOT NULL DEFAULT '',
    retry_of            TEXT        NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE IF EXISTS executions;
