// Package daemon assembles tockd: it parses the command line, opens the store, and runs the
// API, the scheduler, the dispatcher and the HTTP endpoints (REST, /metrics, /healthz) until
// it is told to stop. `tockd dev` also runs one agent in the same process, next to the local
// service at --app-addr, so that one command gives a working scheduler.
package daemon
