-- +goose Up
-- The job's overlap policy (store.OverlapPolicy as JSON); NULL is the default policy.
ALTER TABLE jobs ADD COLUMN overlap TEXT;

-- +goose Down
ALTER TABLE jobs DROP COLUMN overlap;
