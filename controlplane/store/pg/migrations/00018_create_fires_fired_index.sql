-- +goose Up
-- PruneFires: fires by the time they were recorded, oldest first.
CREATE INDEX IF NOT EXISTS fires_fired ON fires (fired_at);

-- +goose Down
DROP INDEX IF EXISTS fires_fired;
