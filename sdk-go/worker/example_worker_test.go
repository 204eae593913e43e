package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tockhq/tock/sdk-go/worker"
)

// A service registers its handlers and serves them until its context is done; in a real
// program the context comes from signal.NotifyContext so that SIGTERM drains the worker.
func Example() {
	w := worker.New(worker.Options{
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		ShutdownTimeout: 5 * time.Second,
	})
	w.Handle("greet", func(ctx context.Context, payload []byte) ([]byte, error) {
		var in struct{ Name string }
		if err := json.Unmarshal(payload, &in); err != nil {
			return nil, worker.NonRetryable(fmt.Errorf("decode payload: %w", err))
		}
		worker.Logf(ctx, slog.LevelInfo, "greeting %s", in.Name)
		return json.Marshal(map[string]string{"greeting": "hello, " + in.Name})
	})

	ctx, stop := context.WithCancel(context.Background())
	stop() // stop at once, for the example
	err := w.ListenAndServe(ctx, "127.0.0.1:0")
	fmt.Println("stopped:", err)
	// Output: stopped: <nil>
}

// Handlers read the execution they run from their context, for example to fence side
// effects with the lease epoch.
func ExampleExecutionFromContext() {
	handler := func(ctx context.Context, _ []byte) ([]byte, error) {
		exec, ok := worker.ExecutionFromContext(ctx)
		if !ok {
			return nil, errors.New("not running as a Tock execution")
		}
		return fmt.Appendf(nil, `{"job":%q,"attempt":%d,"epoch":%d}`, exec.Job, exec.Attempt, exec.LeaseEpoch), nil
	}
	_, err := handler(context.Background(), nil)
	fmt.Println(err)
	// Output: not running as a Tock execution
}

// An *Error sets the kind jobs can match in their non-retryable kinds and the earliest time
// to retry.
func ExampleError() {
	err := fmt.Errorf("charge card: %w", &worker.Error{
		Kind:       "RateLimited",
		Message:    "payment provider is throttling",
		Retryable:  true,
		RetryAfter: 30 * time.Second,
	})

	var e *worker.Error
	if errors.As(err, &e) {
		fmt.Println(e.Kind, e.Retryable, e.RetryAfter)
	}
	fmt.Println(err)
	// Output:
	// RateLimited true 30s
	// charge card: payment provider is throttling
}

// Plain errors are retried under the job's retry policy; NonRetryable stops retries.
func ExampleNonRetryable() {
	err := worker.NonRetryable(errors.New("unknown customer id"))

	var e *worker.Error
	errors.As(err, &e)
	fmt.Println(e.Retryable, err)
	// Output: false unknown customer id
}
