-- +goose Up
-- The fraction done the handler last reported (RecordProgress); NULL until it reports.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS progress_fraction DOUBLE PRECISION;

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS progress_fraction;
