-- +goose Up
-- FireDueJobs: unpaused jobs with a next fire time, earliest first.
CREATE INDEX jobs_due ON jobs (next_fire_at, name) WHERE paused = 0 AND next_fire_at IS NOT NULL;

-- +goose Down
DROP INDEX jobs_due;
