-- +goose Up
-- The number of shards of a sharded execution's fire; 0 when it is not sharded.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS shard_total BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE executions DROP COLUMN IF EXISTS shard_total;
