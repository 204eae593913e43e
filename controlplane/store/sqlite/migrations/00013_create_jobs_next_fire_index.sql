-- +goose Up
-- FireDueJobs: jobs with a next fire time, earliest first, paused ones included (their fires
-- are recorded as skipped_paused).
CREATE INDEX jobs_next_fire ON jobs (next_fire_at, name) WHERE next_fire_at IS NOT NULL;

-- +goose Down
DROP INDEX jobs_next_fire;
