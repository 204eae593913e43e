-- +goose Up
-- The jobs this one depends on, as a JSON list; job_dependencies indexes them.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS depends_on JSONB;

-- +goose Down
ALTER TABLE jobs DROP COLUMN IF EXISTS depends_on;
