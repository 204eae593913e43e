package store

import (
	"fmt"

	"github.com/google/uuid"
)

// EnsureID gives e a new id when it has none: a UUIDv7, so that ids sort by creation time.
func (e *Execution) EnsureID() error {
	if e.ID != "" {
		return nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new execution id: %w", err)
	}
	e.ID = id.String()
	return nil
}
