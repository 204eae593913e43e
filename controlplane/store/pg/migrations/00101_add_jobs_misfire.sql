-- +goose Up
-- The job's misfire policy (store.MisfirePolicy as JSON); NULL is the default policy.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS misfire JSONB;

-- +goose Down
ALTER TABLE jobs DROP COLUMN IF EXISTS misfire;
