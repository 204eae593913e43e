-- +goose Up
-- FireDueJobs: jobs with a next fire time, earliest first, paused ones included (their fires
-- are recorded as skipped_paused).
CREATE INDEX IF NOT EXISTS jobs_next_fire ON jobs (next_fire_at, name) WHERE next_fire_at IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS jobs_next_fire;
