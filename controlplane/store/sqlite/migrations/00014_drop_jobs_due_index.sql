-- +goose Up
-- jobs_next_fire replaces jobs_due, which left paused jobs out.
DROP INDEX jobs_due;

-- +goose Down
CREATE INDEX jobs_due ON jobs (next_fire_at, name) WHERE paused = 0 AND next_fire_at IS NOT NULL;
