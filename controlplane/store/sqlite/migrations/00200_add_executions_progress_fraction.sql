-- +goose Up
-- The fraction done the handler last reported (RecordProgress); NULL until it reports.
ALTER TABLE executions ADD COLUMN progress_fraction REAL;

-- +goose Down
ALTER TABLE executions DROP COLUMN progress_fraction;
