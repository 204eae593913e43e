// Command example is a small Tock service written with the Go SDK (sdk-go/worker). It serves
// three handlers for demos and end-to-end tests:
//
//   - echo returns its payload unchanged;
//   - sleep reads {"ms": N} (0 to 3600000), sleeps N milliseconds, reporting progress and
//     heartbeating every second, stops early when cancelled or past its deadline, and returns
//     {"slept_ms": N};
//   - fail always fails with a retryable error of kind "Deliberate".
//
// examples/python serves the same handlers with the same behaviour, so that any test can run
// against either.
//
// Run it next to a tock-agent:
//
//	go run ./examples/go --listen 127.0.0.1:7403      # or unix:///tmp/example.sock
//	tock-agent --app-addr 127.0.0.1:7403 --service example
//
// With --token (or $TOCK_APP_TOKEN) set, the agent must send the same token (its --app-token,
// which also defaults to $TOCK_APP_TOKEN).
package main
