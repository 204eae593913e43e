-- +goose Up
-- The shard a sharded execution handles, from 0.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS shard_index BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS shard_index;
