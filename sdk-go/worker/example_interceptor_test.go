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

// Interceptors wrap every handler. The first in Options.Interceptors is the outermost: its
// code runs first before the handler and last after it.
func ExampleInterceptorFunc() {
	trace := func(name string) worker.Interceptor {
		return worker.InterceptorFunc(func(next worker.ExecuteFunc) worker.ExecuteFunc {
			return func(ctx context.Context, in worker.Payload) (worker.Payload, error) {
				fmt.Println(name, "before")
				out, err := next(ctx, in)
				fmt.Println(name, "after")
				return out, err
			}
		})
	}
	w := worker.New(worker.Options{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Interceptors: []worker.Interceptor{trace("outer"), trace("inner")},
	})
	w.Handle("work", func(context.Context, []byte) ([]byte, error) {
		fmt.Println("handler")
		return nil, nil
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	_, _ = agent.Run(context.Background(), workertest.Start{Handler: "work"})
	// Output:
	// outer before
	// inner before
	// handler
	// inner after
	// outer after
}

// durations records how long each handler ran. It embeds InterceptorBase, so that it keeps
// compiling when Interceptor gains methods.
type durations struct {
	worker.InterceptorBase
	record func(handler string, d time.Duration, err error)
}

func (d durations) InterceptExecute(next worker.ExecuteFunc) worker.ExecuteFunc {
	return func(ctx context.Context, in worker.Payload) (worker.Payload, error) {
		start := time.Now()
		out, err := next(ctx, in)
		exec, _ := worker.ExecutionFromContext(ctx)
		d.record(exec.Handler, time.Since(start), err)
		return out, err
	}
}

// An interceptor type embeds InterceptorBase and overrides InterceptExecute. It reads the
// execution from the context and sees the handler's error, panics included.
func ExampleInterceptorBase() {
	metrics := durations{record: func(handler string, d time.Duration, err error) {
		fmt.Printf("%s took less than a minute: %v, error: %v\n", handler, d < time.Minute, err)
	}}
	w := worker.New(worker.Options{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Interceptors: []worker.Interceptor{metrics},
	})
	w.Handle("ok", func(context.Context, []byte) ([]byte, error) { return nil, nil })
	w.Handle("boom", func(context.Context, []byte) ([]byte, error) { panic("out of cheese") })

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	_, _ = agent.Run(context.Background(), workertest.Start{Handler: "ok"})
	res, _ := agent.Run(context.Background(), workertest.Start{Handler: "boom"})
	fmt.Println(res.Outcome, res.Err.Kind)
	// Output:
	// ok took less than a minute: true, error: <nil>
	// boom took less than a minute: true, error: handler panicked: out of cheese
	// FAILED Panic
}
