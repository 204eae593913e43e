-- +goose Up
-- The job's schedule-to-start timeout when the execution was created, in microseconds.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS schedule_to_start_us BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS schedule_to_start_us;
