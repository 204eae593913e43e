-- +goose Up
-- How agents are chosen for the job's executions (store.Routing as JSON); NULL is the default.
ALTER TABLE jobs ADD COLUMN routing TEXT;

-- +goose Down
ALTER TABLE jobs DROP COLUMN routing;
