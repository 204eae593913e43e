-- +goose Up
-- The idempotency keys of manual triggers (TriggerJob's request_id): the primary key is what
-- makes a key create one execution; a key goes with the execution it created.
CREATE TABLE trigger_requests (
    job          TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    PRIMARY KEY (job, request_id)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE trigger_requests;
