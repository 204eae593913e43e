package workertest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
)

// Test a handler through a worker, as the agent runs it.
func ExampleServe() {
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	worker.HandleTyped(w, "greet", func(ctx context.Context, in struct{ Name string }) (string, error) {
		worker.Progress(ctx, 1, "greeted")
		return "hello, " + in.Name, nil
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	res, err := agent.Run(context.Background(), workertest.Start{Handler: "greet", Payload: []byte(`{"Name": "Ada"}`)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Outcome, string(res.Output), res.Progress)
	// Output: SUCCEEDED "hello, Ada" [{1 greeted}]
}
