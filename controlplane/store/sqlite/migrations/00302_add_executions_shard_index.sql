-- +goose Up
-- The shard a sharded execution handles, from 0.
ALTER TABLE executions ADD COLUMN shard_index INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE executions DROP COLUMN shard_index;
