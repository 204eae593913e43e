-- +goose Up
-- When a job was last resumed: nominal times before it are recorded as skipped_paused.
ALTER TABLE jobs ADD COLUMN resumed_at INTEGER;

-- +goose Down
ALTER TABLE jobs DROP COLUMN resumed_at;
