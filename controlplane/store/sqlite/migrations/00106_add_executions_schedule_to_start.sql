-- +goose Up
-- The job's schedule-to-start timeout when the execution was created, in microseconds.
ALTER TABLE executions ADD COLUMN schedule_to_start_us INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE executions DROP COLUMN schedule_to_start_us;
