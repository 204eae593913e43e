-- +goose Up
-- The job's schedule-to-close timeout in microseconds; 0 means none.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS schedule_to_close_us BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE jobs DROP COLUMN IF EXISTS schedule_to_close_us;
