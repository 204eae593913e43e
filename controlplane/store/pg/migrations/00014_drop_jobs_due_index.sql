-- +goose Up
-- jobs_next_fire replaces jobs_due, which left paused jobs out.
DROP INDEX IF EXISTS jobs_due;

-- +goose Down
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (next_fire_at, name) WHERE NOT paused AND next_fire_at IS NOT NULL;
