package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
)

// A service registers its handlers and serves them until its context is done; in a real
// program the context comes from signal.NotifyContext, so that SIGTERM drains the worker:
// running handlers get Options.ShutdownTimeout to finish before their contexts are cancelled.
func Example() {
	w := worker.New(worker.Options{
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		ShutdownTimeout: 5 * time.Second,
	})
	worker.HandleTyped(w, "greet", func(ctx context.Context, in struct{ Name string }) (map[string]string, error) {
		worker.Logger(ctx).Info("greeting", "name", in.Name)
		return map[string]string{"greeting": "hello, " + in.Name}, nil
	})

	ctx, stop := context.WithCancel(context.Background())
	stop() // stop at once, for the example
	err := w.ListenAndServe(ctx, "127.0.0.1:0")
	fmt.Println("stopped:", err)
	// Output: stopped: <nil>
}

// Handlers read the execution they run from their context, for example to fence side
// effects with the lease epoch, or to pick their share of a sharded job.
func ExampleExecutionFromContext() {
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.Handle("report", func(ctx context.Context, _ []byte) ([]byte, error) {
		exec, _ := worker.ExecutionFromContext(ctx)
		fmt.Println("id:", exec.ID)
		fmt.Println("job:", exec.Job, "handler:", exec.Handler)
		fmt.Println("attempt:", exec.Attempt, "lease epoch:", exec.LeaseEpoch)
		fmt.Println("nominal time:", exec.NominalTime.Format(time.RFC3339))
		fmt.Printf("shard: %d of %d\n", exec.ShardIndex+1, exec.ShardTotal)
		_, hasDeadline := ctx.Deadline()
		fmt.Println("deadline:", exec.Deadline.Equal(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)), hasDeadline)
		return nil, nil
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	_, _ = agent.Run(context.Background(), workertest.Start{
		ID:          "0190a1b2-0000-7000-8000-000000000001",
		Handler:     "report",
		Job:         "nightly-report",
		Attempt:     2,
		LeaseEpoch:  5,
		NominalTime: time.Date(2030, 6, 1, 2, 0, 0, 0, time.UTC),
		ShardIndex:  1,
		ShardTotal:  4,
		Deadline:    time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	// Output:
	// id: 0190a1b2-0000-7000-8000-000000000001
	// job: nightly-report handler: report
	// attempt: 2 lease epoch: 5
	// nominal time: 2030-06-01T02:00:00Z
	// shard: 2 of 4
	// deadline: true true
}
