-- +goose Up
-- The results of the upstream executions a dependent execution ran after, as JSON.
ALTER TABLE executions ADD COLUMN upstream TEXT;

-- +goose Down
ALTER TABLE executions DROP COLUMN upstream;
