package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
)

// A job that depends on others (its dependsOn field) runs once they have all succeeded for the
// same nominal time; their results arrive with the execution.
func ExampleExecution_upstream() {
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.Handle("load", func(ctx context.Context, _ []byte) ([]byte, error) {
		exec, _ := worker.ExecutionFromContext(ctx)
		for _, u := range exec.Upstream {
			fmt.Printf("%s (%s): %s\n", u.Job, u.ContentType, u.Output)
		}
		return nil, nil
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	_, _ = agent.Run(context.Background(), workertest.Start{
		Handler: "load",
		Upstream: []worker.Upstream{
			{Job: "extract", ExecutionID: "e-1", Output: []byte(`{"rows":3}`), ContentType: "application/json"},
			{Job: "transform", ExecutionID: "e-2", Output: []byte(`{"clean":3}`), ContentType: "application/json"},
		},
	})
	// Output:
	// extract (application/json): {"rows":3}
	// transform (application/json): {"clean":3}
}
