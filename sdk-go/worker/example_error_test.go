package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
)

// An *Error sets the kind jobs can match in their non-retryable kinds and the earliest time
// to retry. It can be wrapped: the worker finds it anywhere in the chain.
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

// What the control plane receives for each kind of error a handler returns: a plain error is
// retried under the job's retry policy, NonRetryable stops retries, and an *Error chooses its
// kind and the delay before the next attempt.
func ExampleError_retryAfter() {
	errs := map[string]error{
		"plain":        errors.New("connection reset"),
		"nonretryable": worker.NonRetryable(errors.New("unknown customer id")),
		"throttled":    &worker.Error{Kind: "RateLimited", Message: "slow down", Retryable: true, RetryAfter: time.Minute},
	}
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.Handle("charge", func(_ context.Context, payload []byte) ([]byte, error) {
		return nil, errs[string(payload)]
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	for _, name := range []string{"plain", "nonretryable", "throttled"} {
		res, _ := agent.Run(context.Background(), workertest.Start{Handler: "charge", Payload: []byte(name)})
		fmt.Printf("%s: %s kind=%q retryable=%v retryAfter=%v\n", name, res.Err.Message, res.Err.Kind, res.Err.Retryable, res.Err.RetryAfter)
	}
	// Output:
	// plain: connection reset kind="" retryable=true retryAfter=0s
	// nonretryable: unknown customer id kind="" retryable=false retryAfter=0s
	// throttled: slow down kind="RateLimited" retryable=true retryAfter=1m0s
}

// Plain errors are retried under the job's retry policy; NonRetryable stops retries.
func ExampleNonRetryable() {
	err := worker.NonRetryable(errors.New("unknown customer id"))

	var e *worker.Error
	errors.As(err, &e)
	fmt.Println(e.Retryable, err)
	// Output: false unknown customer id
}

// When the execution's deadline (the job's timeout) passes or the execution is cancelled, the
// handler's context is done; whatever error the handler then returns, the execution ends
// TIMED_OUT (retried under the job's policy) or CANCELLED (never retried).
func ExampleError_deadline() {
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.Handle("wait", func(ctx context.Context, _ []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("gave up waiting: %w", context.Cause(ctx))
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	res, _ := agent.Run(context.Background(), workertest.Start{Handler: "wait", Deadline: time.Now().Add(10 * time.Millisecond)})
	fmt.Println(res.Outcome, res.Err.Kind, res.Err.Retryable)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run sends a Cancel once its context is done, as the agent does
	res, _ = agent.Run(ctx, workertest.Start{Handler: "wait"})
	fmt.Println(res.Outcome, res.Err.Kind, res.Err.Retryable)
	// Output:
	// TIMED_OUT DeadlineExceeded true
	// CANCELLED Cancelled false
}
