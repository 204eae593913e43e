-- +goose Up
CREATE TABLE executions (
    id                  TEXT    NOT NULL PRIMARY KEY,
    job                 TEXT    NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    handler             TEXT    NOT NULL,
    service             TEXT    NOT NULL DEFAULT '',
    selector            TEXT,
    attempt             INTEGER NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('pending', 'assigned', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'lost')),
    trigger_kind        TEXT    NOT NULL,
    nominal_time        INTEGER NOT NULL,
    not_before          INTEGER NOT NULL,
    priority            INTEGER NOT NULL DEFAULT 0,
    payload             BLOB,
    content_type        TEXT    NOT NULL DEFAULT '',
    timeout_us          INTEGER NOT NULL DEFAULT 0,
    retry               TEXT    NOT NULL,
    agent_id            TEXT    NOT NULL DEFAULT '',
    lease_epoch         INTEGER NOT NULL DEFAULT 0,
    lease_deadline      INTEGER,
    cancel_requested    INTEGER NOT NULL DEFAULT 0,
    result              BLOB,
    result_content_type TEXT    NOT NULL DEFAULT '',
    error               TEXT,
    created_at          INTEGER NOT NULL,
    assigned_at         INTEGER,
    started_at          INTEGER,
    finished_at         INTEGER,
    trace_context       TEXT    NOT NULL DEFAULT '',
    trace_id            TEXT    NOT NULL DEFAULT '',
    retry_of            TEXT    NOT NULL DEFAULT ''
) STRICT;

-- +goose Down
DROP TABLE executions;
