// Package e2e runs Tock's real binaries as processes on loopback ports and checks what a
// user sees through the REST API and the CLI. The binaries are built once per test run.
package e2e
