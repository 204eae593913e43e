package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/tockhq/tock/sdk-go/worker"
)

// maxSleep bounds the sleep handler so that a typo cannot park an execution for days.
const maxSleep = time.Hour

// register adds the example handlers to w.
func register(w *worker.Worker) {
	w.Handle("echo", echo)
	w.Handle("sleep", sleep)
	w.Handle("fail", fail)
}

// echo returns its payload unchanged.
func echo(_ context.Context, payload []byte) ([]byte, error) {
	return payload, nil
}

type sleepInput struct {
	MS int64 `json:"ms"`
}

type sleepOutput struct {
	SleptMS int64 `json:"slept_ms"`
}

// sleep sleeps for the requested number of milliseconds, reporting progress, and returns early
// with the context's error when the execution is cancelled or its deadline passes.
func sleep(ctx context.Context, payload []byte) ([]byte, error) {
	var in sleepInput
	if err := json.Unmarshal(payload, &in); err != nil {
		return nil, &worker.Error{Kind: "InvalidInput", Message: `sleep wants a JSON payload like {"ms": 100}`, Err: err}
	}
	d := time.Duration(in.MS) * time.Millisecond
	if in.MS < 0 || d > maxSleep {
		return nil, &worker.Error{Kind: "InvalidInput", Message: fmt.Sprintf("sleep: ms must be from 0 to %d, got %d", maxSleep.Milliseconds(), in.MS)}
	}
	worker.Logf(ctx, slog.LevelInfo, "sleeping for %s", d)
	worker.Progress(ctx, 0, "sleeping")
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("sleep interrupted: %w", ctx.Err())
	case <-timer.C:
	}
	worker.Progress(ctx, 1, "awake")
	return json.Marshal(sleepOutput{SleptMS: in.MS})
}

// fail always fails, retryably.
func fail(context.Context, []byte) ([]byte, error) {
	return nil, &worker.Error{Kind: "Deliberate", Message: "fail handler always fails", Retryable: true}
}
