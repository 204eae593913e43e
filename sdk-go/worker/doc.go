// Package worker serves a Go service's handlers to its Tock agent.
//
// A Tock agent runs next to every service that runs jobs. When the control plane assigns an
// execution to the agent, the agent asks the service to run one of its handlers. This package
// is the service's side of that conversation: register handlers by name, then serve them.
//
//	w := worker.New(worker.Options{})
//	w.Handle("resize", func(ctx context.Context, payload []byte) ([]byte, error) {
//		exec, _ := worker.ExecutionFromContext(ctx)
//		worker.Logf(ctx, slog.LevelInfo, "resizing for job %s, attempt %d", exec.Job, exec.Attempt)
//		return resize(ctx, payload)
//	})
//	err := w.ListenAndServe(ctx, "127.0.0.1:7403")
//
// # Executions
//
// The agent keeps one long-lived stream open to the service and sends every execution over
// it. Each execution runs its handler in its own goroutine with a context that
//
//   - carries the execution's details (see ExecutionFromContext),
//   - has the execution's deadline (the job's timeout), and
//   - is cancelled when the control plane cancels the execution or the agent's stream ends.
//
// Handlers must return promptly once their context is done.
//
// # Results and errors
//
// A handler returns output bytes or an error. Output that is valid JSON is reported with the
// content type "application/json", anything else as "application/octet-stream".
//
// A plain error fails the execution and may be retried under the job's retry policy. Wrap it
// with NonRetryable to stop retries, or return an *Error to set a kind that jobs can match in
// their list of non-retryable kinds, and the earliest time to retry. When the execution's
// context is done, the error is reported as a timeout (deadline passed) or a cancellation.
// A panic in a handler is recovered and reported as a retryable failure of kind "Panic".
//
// # Shutdown
//
// When the context given to Serve is done, the worker stops taking new executions (they are
// reported as retryable failures of kind "WorkerShuttingDown"), lets running handlers finish
// for up to Options.ShutdownTimeout, then cancels their contexts, reports their results and
// returns once every handler has returned.
//
// # Security
//
// The agent usually reaches the service over loopback or a unix socket. When Options.Token is
// set, every call must carry the metadata "authorization: Bearer <token>"; the agent's
// --app-token flag sets it.
package worker
