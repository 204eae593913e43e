-- +goose Up
-- When a job was last resumed: nominal times before it are recorded as skipped_paused.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS resumed_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE jobs DROP COLUMN IF EXISTS resumed_at;
