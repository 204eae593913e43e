package main

import (
	"context"
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
	worker.HandleTyped(w, "sleep", sleep)
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

// sleep sleeps for the requested number of milliseconds, reporting progress and heartbeating
// every second, and returns early with the context's error when the execution is cancelled or
// its deadline passes.
func sleep(ctx context.Context, in sleepInput) (sleepOutput, error) {
	d := time.Duration(in.MS) * time.Millisecond
	if in.MS < 0 || d > maxSleep {
		return sleepOutput{}, &worker.Error{Kind: "InvalidInput", Message: fmt.Sprintf("sleep: ms must be from 0 to %d, got %d", maxSleep.Milliseconds(), in.MS)}
	}
	worker.Logf(ctx, slog.LevelInfo, "sleeping for %d ms", in.MS)
	worker.Progress(ctx, 0, "sleeping")
	start := time.Now()
	timer := time.NewTimer(d)
	defer timer.Stop()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return sleepOutput{}, fmt.Errorf("sleep interrupted: %w", ctx.Err())
		case <-ticker.C:
			slept := time.Since(start)
			worker.Heartbeat(ctx)
			worker.Progress(ctx, float64(slept)/float64(d), fmt.Sprintf("slept %d of %d ms", slept.Milliseconds(), in.MS))
		case <-timer.C:
			worker.Progress(ctx, 1, "awake")
			return sleepOutput{SleptMS: in.MS}, nil
		}
	}
}

// fail always fails, retryably.
func fail(context.Context, []byte) ([]byte, error) {
	return nil, &worker.Error{Kind: "Deliberate", Message: "fail handler always fails", Retryable: true}
}
