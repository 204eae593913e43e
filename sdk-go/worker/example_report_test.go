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

// A long handler reports progress and log lines, which the agent forwards to the control plane,
// and heartbeats to show that it is alive.
func ExampleProgress() {
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.Handle("copy", func(ctx context.Context, _ []byte) ([]byte, error) {
		files := []string{"a.txt", "b.txt", "c.txt", "d.txt"}
		for i, f := range files {
			if err := ctx.Err(); err != nil {
				return nil, err // cancelled or past the deadline: stop early
			}
			worker.Logf(ctx, slog.LevelInfo, "copying %s", f)
			worker.Heartbeat(ctx)
			worker.Progress(ctx, float64(i+1)/float64(len(files)), fmt.Sprintf("copied %d of %d files", i+1, len(files)))
		}
		return []byte(`{"copied": 4}`), nil
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	res, _ := agent.Run(context.Background(), workertest.Start{Handler: "copy"})
	for _, l := range res.Logs {
		fmt.Println(l.Level, l.Message)
	}
	for _, p := range res.Progress {
		fmt.Printf("%.2f %s\n", p.Fraction, p.Message)
	}
	fmt.Println("heartbeats sent:", res.Heartbeats > 0)
	// Output:
	// INFO copying a.txt
	// INFO copying b.txt
	// INFO copying c.txt
	// INFO copying d.txt
	// 0.25 copied 1 of 4 files
	// 0.50 copied 2 of 4 files
	// 0.75 copied 3 of 4 files
	// 1.00 copied 4 of 4 files
	// heartbeats sent: true
}

// Heartbeat is cheap to call often: at most one heartbeat a second is sent per execution.
func ExampleHeartbeat() {
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.Handle("crunch", func(ctx context.Context, _ []byte) ([]byte, error) {
		ticker := time.NewTicker(time.Millisecond)
		defer ticker.Stop()
		for range 20 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-ticker.C:
				worker.Heartbeat(ctx) // between steps of the real work
			}
		}
		return nil, nil
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	res, _ := agent.Run(context.Background(), workertest.Start{Handler: "crunch"})
	fmt.Println(res.Outcome, "heartbeats coalesced:", res.Heartbeats >= 1 && res.Heartbeats < 20)
	// Output: SUCCEEDED heartbeats coalesced: true
}

// Logger gives handlers a *slog.Logger: each record goes to the execution's log lines, with its
// attributes, and to the worker's own logger with the execution's id, job and attempt.
func ExampleLogger() {
	local := slog.New(slog.NewTextHandler(io.Discard, nil)) // your service's logger
	w := worker.New(worker.Options{Logger: local})
	w.Handle("import", func(ctx context.Context, _ []byte) ([]byte, error) {
		log := worker.Logger(ctx).With("source", "s3://bucket/rows.csv")
		log.Info("imported rows", "count", 1200, "skipped", 3)
		log.Warn("slow storage", slog.Group("latency", "p99", 2*time.Second))
		return nil, nil
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	res, _ := agent.Run(context.Background(), workertest.Start{Handler: "import"})
	for _, l := range res.Logs {
		fmt.Println(l.Level, l.Message)
	}
	// Output:
	// INFO imported rows source=s3://bucket/rows.csv count=1200 skipped=3
	// WARN slow storage source=s3://bucket/rows.csv latency.p99=2s
}
