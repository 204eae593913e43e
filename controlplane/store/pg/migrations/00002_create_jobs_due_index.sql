-- +goose Up
-- FireDueJobs: unpaused jobs with a next fire time, earliest first.
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (next_fire_at, name) WHERE NOT paused AND next_fire_at IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS jobs_due;
