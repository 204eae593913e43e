-- +goose Up
-- The jobs this one depends on, as a JSON list; job_dependencies indexes them.
ALTER TABLE jobs ADD COLUMN depends_on TEXT;

-- +goose Down
ALTER TABLE jobs DROP COLUMN depends_on;
