-- +goose Up
-- The idempotency keys of manual triggers (TriggerJob's request_id): the primary key is what
-- makes a key create one execution. A key is deleted with its execution (PruneExecutions)
-- or its job.
CREATE TABLE trigger_requests (
    job          TEXT NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    request_id   TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    PRIMARY KEY (job, request_id)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE trigger_requests;
