// Command example is a small Tock service written with the Go SDK (sdk-go/worker). It serves
// three handlers for demos and end-to-end tests:
//
//   - echo returns its payload unchanged;
//   - sleep reads {"ms": N}, sleeps N milliseconds (stopping early when cancelled or past its
//     deadline) and returns {"slept_ms": N};
//   - fail always fails with a retryable error of kind "Deliberate".
//
// Run it next to a tock-agent:
//
//	go run ./examples/go --listen 127.0.0.1:7403
//	tock-agent --app-addr 127.0.0.1:7403 --service example
package main
