-- +goose Up
-- How many log lines execution_logs holds for the execution, so that AppendLogs enforces its
-- cap without counting rows.
ALTER TABLE executions ADD COLUMN log_lines INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE executions DROP COLUMN log_lines;
