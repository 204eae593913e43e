package worker_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/sdk-go/worker"
)

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	cause := io.ErrUnexpectedEOF
	tests := []struct {
		err  *worker.Error
		want string
	}{
		{&worker.Error{Message: "m"}, "m"},
		{&worker.Error{Message: "m", Err: cause}, "m: unexpected EOF"},
		{&worker.Error{Err: cause}, "unexpected EOF"},
		{&worker.Error{Kind: "K"}, "K"},
		{&worker.Error{}, "handler error"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.err.Error())
	}
	require.ErrorIs(t, &worker.Error{Err: cause}, cause)
}

func TestRetryableHelpers(t *testing.T) {
	t.Parallel()
	require.NoError(t, worker.Retryable(nil))
	require.NoError(t, worker.NonRetryable(nil))

	base := errors.New("boom")
	var e *worker.Error
	require.ErrorAs(t, worker.NonRetryable(base), &e)
	require.False(t, e.Retryable)
	require.ErrorIs(t, e, base)
	require.Equal(t, "boom", e.Error())

	// The kind and retry delay of an *Error survive re-marking.
	orig := &worker.Error{Kind: "RateLimited", Message: "slow down", RetryAfter: time.Second}
	require.ErrorAs(t, worker.Retryable(worker.NonRetryable(orig)), &e)
	require.True(t, e.Retryable)
	require.Equal(t, "RateLimited", e.Kind)
	require.Equal(t, time.Second, e.RetryAfter)
	require.ErrorIs(t, e, orig)
	require.Equal(t, "slow down", e.Error())

	// Context errors stay recognisable.
	require.ErrorIs(t, worker.NonRetryable(context.Canceled), context.Canceled)
}
