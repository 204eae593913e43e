-- +goose Up
-- The primary key is what makes a fire happen at most once per (job, nominal time).
CREATE TABLE fires (
    job          TEXT    NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    nominal_time INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,
    execution_id TEXT    NOT NULL DEFAULT '',
    fired_at     INTEGER NOT NULL,
    PRIMARY KEY (job, nominal_time)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE fires;
