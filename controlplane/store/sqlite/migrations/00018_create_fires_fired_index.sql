-- +goose Up
-- PruneFires: fires by the time they were recorded, oldest first.
CREATE INDEX fires_fired ON fires (fired_at);

-- +goose Down
DROP INDEX fires_fired;
