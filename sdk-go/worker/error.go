package worker

import (
	"errors"
	"fmt"
	"time"
)

// Error is a handler error with the details the control plane uses to decide what happens next.
//
// The zero value of Retryable is false: an *Error built as a literal is not retried unless it
// says so. A plain error returned by a handler is retryable.
type Error struct {
	// Kind is a short machine-readable kind, such as "InvalidInput". Jobs can list kinds that
	// must never be retried.
	Kind string
	// Message is a message a person can act on. When empty, Err's message is used.
	Message string
	// Retryable says whether the control plane may retry the execution under the job's retry
	// policy.
	Retryable bool
	// RetryAfter, when positive, is the earliest delay before the next attempt; it overrides
	// the job's backoff.
	RetryAfter time.Duration
	// Err is the underlying error, if any.
	Err error
}

// Error returns the message, followed by the underlying error's when both are set.
func (e *Error) Error() string {
	switch {
	case e.Message != "" && e.Err != nil:
		return e.Message + ": " + e.Err.Error()
	case e.Message != "":
		return e.Message
	case e.Err != nil:
		return e.Err.Error()
	case e.Kind != "":
		return e.Kind
	default:
		return "handler error"
	}
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable marks err as retryable. When err already carries an *Error, its kind and retry
// delay are kept. Retryable(nil) is nil.
func Retryable(err error) error { return withRetryable(err, true) }

// NonRetryable marks err as not retryable: the execution fails without further attempts.
// When err already carries an *Error, its kind is kept. NonRetryable(nil) is nil.
func NonRetryable(err error) error { return withRetryable(err, false) }

func withRetryable(err error, retryable bool) error {
	if err == nil {
		return nil
	}
	out := &Error{Retryable: retryable, Err: err}
	var e *Error
	if errors.As(err, &e) {
		out.Kind = e.Kind
		out.RetryAfter = e.RetryAfter
	}
	return out
}

// errorDetails is what a handler's error says about itself.
type errorDetails struct {
	message    string
	kind       string
	retryable  bool
	retryAfter time.Duration
	explicit   bool // the error carried an *Error
}

// detailsOf reads err: an *Error anywhere in its chain decides kind and retryability; a plain
// error is retryable.
func detailsOf(err error) errorDetails {
	d := errorDetails{message: err.Error(), retryable: true}
	var e *Error
	if errors.As(err, &e) {
		d.kind = e.Kind
		d.retryable = e.Retryable
		d.retryAfter = e.RetryAfter
		d.explicit = true
	}
	return d
}

// panicError is a recovered handler panic.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("handler panicked: %v", p.value) }
