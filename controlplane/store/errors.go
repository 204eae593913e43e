package store

import "errors"

// Errors every Store returns, checked with errors.Is.
var (
	// ErrNotFound means the job or execution does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a job with that name, or an execution with that ID, exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrContended means the store gave up on a transaction that kept conflicting with
	// concurrent ones (serialization failures every time it was retried). A smaller
	// transaction, or the same one later, may succeed.
	ErrContended = errors.New("transaction kept conflicting with concurrent ones")
)
