// Package worker serves a Go service's handlers to its Tock agent.
//
// A Tock agent runs next to every service that runs jobs. When the control plane assigns an
// execution to the agent, the agent asks the service to run one of its handlers. This package
// is the service's side of that conversation: register handlers by name, then serve them.
//
//	type resizeInput struct{ Image string; Width int }
//
//	w := worker.New(worker.Options{})
//	worker.HandleTyped(w, "resize", func(ctx context.Context, in resizeInput) (resizeOutput, error) {
//		exec, _ := worker.ExecutionFromContext(ctx)
//		worker.Logger(ctx).Info("resizing", "image", in.Image, "attempt", exec.Attempt)
//		return resize(ctx, in)
//	})
//	err := w.ListenAndServe(ctx, "127.0.0.1:7403")
//
// # Handlers
//
// HandleTyped registers a handler with typed input and output: the payload is decoded from
// JSON (or protobuf, for protobuf message types) and the output encoded the same way; a
// payload that does not decode fails the execution, unretried, with kind "InvalidPayload".
// Worker.Handle registers a handler of raw bytes. The workertest package runs handlers in
// tests as the agent does.
//
// # Executions
//
// The agent keeps one long-lived stream open to the service and sends every execution over
// it. Each execution runs its handler in its own goroutine with a context that
//
//   - carries the execution's details (see ExecutionFromContext): id, job, attempt, nominal
//     time, lease epoch, shard index and total, deadline;
//   - has the execution's deadline (the job's timeout);
//   - is cancelled when the control plane cancels the execution, the agent's stream ends or
//     the worker's shutdown timeout passes (context.Cause says which); and
//   - carries the execution's trace as the parent of the spans the handler starts.
//
// Handlers must return promptly once their context is done. While they run, they report with
// Progress, Logf or Logger (log lines), and Heartbeat; the agent forwards progress and log
// lines to the control plane. None of these block.
//
// # Results and errors
//
// A handler returns an output or an error. A plain error fails the execution and may be
// retried under the job's retry policy. Wrap it with NonRetryable to stop retries, or return
// an *Error to set a kind that jobs can match in their list of non-retryable kinds, and the
// earliest time to retry. When the execution's context is done, the error is reported as a
// timeout (deadline passed; retried under the policy) or a cancellation (never retried). A
// panic in a handler is recovered and reported as a retryable failure of kind "Panic".
//
// # Interceptors
//
// Options.Interceptors wrap every handler, the first outermost; see Interceptor. The
// otelworker package provides one that traces handlers with OpenTelemetry; the worker starts
// no span itself.
//
// # Shutdown
//
// When the context given to Serve is done, the worker stops taking new executions (they are
// reported as retryable failures of kind "WorkerShuttingDown"), lets running handlers finish
// for up to Options.ShutdownTimeout, then cancels their contexts with ErrShutdown as the cause,
// reports them as retryable failures of kind "WorkerShutdown", and returns once every handler
// has returned.
//
// # Listeners and security
//
// ListenAndServe and Listen take "host:port" or "unix:///path/to.sock". The agent usually
// reaches the service over loopback or a unix socket. When Options.Token is set, every call
// must carry the metadata "authorization: Bearer <token>"; the agent's --app-token flag (or
// $TOCK_APP_TOKEN) sets it.
package worker
