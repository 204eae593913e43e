-- +goose Up
-- Which job depends on which: the index of jobs.depends_on, kept by CreateJob and UpdateJob.
-- upstream is not a reference: a job may outlive a job it depends on, and waits for it.
CREATE TABLE job_dependencies (
    job      TEXT NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    upstream TEXT NOT NULL,
    PRIMARY KEY (job, upstream)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE job_dependencies;
