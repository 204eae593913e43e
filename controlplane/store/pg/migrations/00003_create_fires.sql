-- +goose Up
-- The primary key is what makes a fire happen at most once per (job, nominal time).
CREATE TABLE IF NOT EXISTS fires (
    job          TEXT        NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    nominal_time TIMESTAMPTZ NOT NULL,
    outcome      TEXT        NOT NULL,
    execution_id TEXT        NOT NULL DEFAULT '',
    fired_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job, nominal_time)
);

-- +goose Down
DROP TABLE IF EXISTS fires;
