package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestEcho(t *testing.T) {
	t.Parallel()
	out, err := echo(context.Background(), []byte("same bytes"))
	require.NoError(t, err)
	require.Equal(t, "same bytes", string(out))
}

func TestSleep(t *testing.T) {
	t.Parallel()
	out, err := sleep(context.Background(), sleepInput{MS: 5})
	require.NoError(t, err)
	require.Equal(t, sleepOutput{SleptMS: 5}, out)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = sleep(ctx, sleepInput{MS: 60000})
	require.ErrorIs(t, err, context.Canceled)

	for _, bad := range []int64{-1, 999999999} {
		_, err = sleep(context.Background(), sleepInput{MS: bad})
		var we *worker.Error
		require.ErrorAs(t, err, &we, bad)
		require.Equal(t, "InvalidInput", we.Kind)
		require.False(t, we.Retryable)
	}
}

func TestFail(t *testing.T) {
	t.Parallel()
	_, err := fail(context.Background(), nil)
	var we *worker.Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, "Deliberate", we.Kind)
	require.Equal(t, "fail handler always fails", we.Message)
	require.True(t, we.Retryable)
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu  sync.Mutex // protects buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServiceServesHandlers(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--token", "tok"}, &logs) }()
	defer func() {
		stop()
		require.NoError(t, <-done)
	}()

	addrRE := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	var addr string
	require.Eventually(t, func() bool {
		m := addrRE.FindStringSubmatch(logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, 10*time.Second, 5*time.Millisecond)

	agent, err := workertest.Dial(addr, workertest.Options{Token: "tok"})
	require.NoError(t, err)
	defer agent.Close()
	names, err := agent.Handlers(t.Context())
	require.NoError(t, err)
	require.Equal(t, []string{"echo", "fail", "sleep"}, names)

	res, err := agent.Run(t.Context(), workertest.Start{Handler: "echo", Payload: []byte(`{"x":1}`)})
	require.NoError(t, err)
	require.JSONEq(t, `{"x":1}`, string(res.Output))

	res, err = agent.Run(t.Context(), workertest.Start{Handler: "sleep", Payload: []byte(`{"ms": 10}`)})
	require.NoError(t, err)
	require.JSONEq(t, `{"slept_ms":10}`, string(res.Output))
	require.Equal(t, []workertest.Progress{{Fraction: 0, Message: "sleeping"}, {Fraction: 1, Message: "awake"}}, res.Progress)
	require.Equal(t, "sleeping for 10 ms", res.Logs[0].Message)

	res, err = agent.Run(t.Context(), workertest.Start{Handler: "fail"})
	require.NoError(t, err)
	require.Equal(t, &worker.Error{Kind: "Deliberate", Message: "fail handler always fails", Retryable: true}, res.Err)

	for payload, kind := range map[string]string{`{"ms": "soon"}`: "InvalidPayload", `{"ms": -5}`: "InvalidInput"} {
		res, err = agent.Run(t.Context(), workertest.Start{Handler: "sleep", Payload: []byte(payload)})
		require.NoError(t, err)
		require.Equal(t, kind, res.Err.Kind, payload)
		require.False(t, res.Err.Retryable, payload)
	}

	res, err = agent.Run(t.Context(), workertest.Start{Handler: "sleep", Payload: []byte(`{"ms": 600000}`), Deadline: time.Now().Add(20 * time.Millisecond)})
	require.NoError(t, err)
	require.Equal(t, workertest.TimedOut, res.Outcome)

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	res, err = agent.Run(cancelled, workertest.Start{Handler: "sleep", Payload: []byte(`{"ms": 600000}`)})
	require.NoError(t, err)
	require.Equal(t, workertest.Cancelled, res.Outcome)
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	err := run(context.Background(), []string{"--bogus"}, &logs)
	require.True(t, errors.As(err, new(usageError)))
}
