package workertest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func newWorker(opts worker.Options) *worker.Worker {
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	w := worker.New(opts)
	w.Handle("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	w.Handle("wait", func(ctx context.Context, _ []byte) ([]byte, error) {
		worker.Heartbeat(ctx)
		<-ctx.Done()
		return nil, context.Cause(ctx)
	})
	w.Handle("info", func(ctx context.Context, _ []byte) ([]byte, error) {
		exec, _ := worker.ExecutionFromContext(ctx)
		return fmt.Appendf(nil, "%s %s %d %d %d/%d %s %s", exec.ID, exec.Job, exec.Attempt, exec.LeaseEpoch,
			exec.ShardIndex, exec.ShardTotal, exec.ContentType, trace.SpanContextFromContext(ctx).TraceID()), nil
	})
	return w
}

func TestRunFillsTheStart(t *testing.T) {
	t.Parallel()
	agent := workertest.Serve(newWorker(worker.Options{}), workertest.Options{})
	defer func() { require.NoError(t, agent.Close()) }()

	res, err := agent.Run(t.Context(), workertest.Start{Handler: "info"})
	require.NoError(t, err)
	require.Equal(t, "exec-1  1 1 0/0  00000000000000000000000000000000", string(res.Output))

	res, err = agent.Run(t.Context(), workertest.Start{
		ID: "x", Handler: "info", Job: "j", Attempt: 3, LeaseEpoch: 9, ShardIndex: 1, ShardTotal: 2,
		ContentType:  "text/plain",
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	})
	require.NoError(t, err)
	require.Equal(t, "x j 3 9 1/2 text/plain 4bf92f3577b34da6a3ce929d0e0e4736", string(res.Output))
	require.Equal(t, "application/octet-stream", res.ContentType)

	names, err := agent.Handlers(t.Context())
	require.NoError(t, err)
	require.Equal(t, []string{"echo", "info", "wait"}, names)
}

func TestRunCancelsWhenTheContextIsDone(t *testing.T) {
	t.Parallel()
	agent := workertest.Serve(newWorker(worker.Options{}), workertest.Options{})
	defer func() { require.NoError(t, agent.Close()) }()

	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("operator asked"))
	res, err := agent.Run(ctx, workertest.Start{Handler: "wait"})
	require.NoError(t, err)
	require.Equal(t, workertest.Cancelled, res.Outcome)
	require.Equal(t, "Cancelled", res.Err.Kind)
	require.Contains(t, res.Err.Message, "operator asked")

	res, err = agent.Run(t.Context(), workertest.Start{Handler: "wait", Deadline: time.Now().Add(20 * time.Millisecond)})
	require.NoError(t, err)
	require.Equal(t, workertest.TimedOut, res.Outcome)
	require.Equal(t, 1, res.Heartbeats)
}

func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	agent := workertest.Serve(newWorker(worker.Options{}), workertest.Options{})
	defer func() { require.NoError(t, agent.Close()) }()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			want := fmt.Sprint(i)
			res, err := agent.Run(t.Context(), workertest.Start{Handler: "echo", Payload: []byte(want)})
			if err == nil && string(res.Output) != want {
				err = fmt.Errorf("got %q, want %q", res.Output, want)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	_, err := agent.Run(t.Context(), workertest.Start{ID: "dup", Handler: "echo"})
	require.NoError(t, err, "an id may be reused once its execution ended")
}

func TestDuplicateRunningID(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	w := newWorker(worker.Options{})
	w.Handle("block", func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	agent := workertest.Serve(w, workertest.Options{})
	defer func() { require.NoError(t, agent.Close()) }()
	results := make(chan workertest.Result, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		res, _ := agent.Run(ctx, workertest.Start{ID: "same", Handler: "block"})
		results <- res
	}()
	<-started
	_, err := agent.Run(t.Context(), workertest.Start{ID: "same", Handler: "echo"})
	require.ErrorContains(t, err, `execution "same" is already running`)
	cancel()
	require.Equal(t, workertest.Cancelled, (<-results).Outcome)
}

func TestCloseEndsRunningExecutions(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	w := newWorker(worker.Options{})
	w.Handle("block", func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	agent := workertest.Serve(w, workertest.Options{})
	results := make(chan workertest.Result, 1)
	go func() {
		res, _ := agent.Run(context.Background(), workertest.Start{Handler: "block"})
		results <- res
	}()
	<-started
	// Closing ends the stream: the worker cancels the handler and reports it before the
	// stream ends.
	require.NoError(t, agent.Close())
	res := <-results
	require.Equal(t, workertest.Cancelled, res.Outcome)

	require.NoError(t, agent.Close(), "Close is idempotent")
	_, err := agent.Run(t.Context(), workertest.Start{Handler: "echo"})
	require.ErrorContains(t, err, "closed")
}

func TestDialUnixSocketAndToken(t *testing.T) {
	t.Parallel()
	addr := "unix://" + filepath.Join(t.TempDir(), "w.sock")
	w := newWorker(worker.Options{Token: "tok"})
	lis, err := worker.Listen(addr)
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- w.Serve(ctx, lis) }()
	defer func() {
		stop()
		require.NoError(t, <-served)
	}()

	good, err := workertest.Dial(addr, workertest.Options{Token: "tok"})
	require.NoError(t, err)
	defer good.Close()
	res, err := good.Run(t.Context(), workertest.Start{Handler: "echo", Payload: []byte("hi")})
	require.NoError(t, err)
	require.Equal(t, "hi", string(res.Output))

	bad, err := workertest.Dial(addr, workertest.Options{Token: "wrong"})
	require.NoError(t, err)
	defer bad.Close()
	_, err = bad.Run(t.Context(), workertest.Start{Handler: "echo"})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = bad.Run(t.Context(), workertest.Start{Handler: "echo"})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "the stream stays failed")
	_, err = bad.Handlers(t.Context())
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}
