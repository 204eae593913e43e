-- +goose Up
-- The job's schedule-to-start timeout in microseconds; 0 means none.
ALTER TABLE jobs ADD COLUMN schedule_to_start_us INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE jobs DROP COLUMN schedule_to_start_us;
