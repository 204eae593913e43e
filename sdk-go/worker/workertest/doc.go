// Package workertest runs a worker's handlers in tests by playing the Tock agent.
//
// An Agent speaks the real protocol to the worker: it opens the Execute stream, sends Start
// and Cancel messages, and collects everything the worker reports. So a test exercises the
// handler exactly as production does: payload decoding, the execution context, deadlines,
// cancellation, interceptors, progress, logs, heartbeats and the mapping of errors.
//
//	w := worker.New(worker.Options{})
//	worker.HandleTyped(w, "greet", greet)
//	agent := workertest.Serve(w, workertest.Options{})
//	defer agent.Close()
//	res, err := agent.Run(ctx, workertest.Start{Handler: "greet", Payload: []byte(`{"name":"Ada"}`)})
//	// res.Outcome == workertest.Succeeded, res.Output == {"greeting":"hello, Ada"}
//
// Serve runs the worker over an in-memory connection; Dial connects to a worker that already
// serves on an address, such as a unix socket.
package workertest
