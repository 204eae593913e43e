// Package agent is tock-agent, the sidecar that runs next to a user service.
//
// The agent sits between two parties:
//
//   - the control-plane replica that owns it, which dials the agent's AgentService and holds
//     one Connect stream (a session) to push assignments and cancellations, and receives
//     heartbeats, progress, logs and results;
//   - the local user service, which serves tock.handler.v1.HandlerService through a Tock SDK.
//     The agent keeps one Execute stream open to it and multiplexes every execution on it.
//
// # Sessions
//
// The replica opens a session with Open{replica_id, session_epoch, heartbeat_interval}; the
// agent answers with Hello (its identity, capacity, handlers and the executions it is still
// running), re-sends every result not yet acknowledged, and heartbeats every interval. Only one
// session is live: an Open with an epoch at least as high as the current session's replaces it
// (the older stream ends with Aborted); a lower epoch is refused with FailedPrecondition.
//
// # Executions
//
// Each assignment is either started or released (handed back without counting as an attempt):
//
//	Assign ──▶ draining? service down? unknown handler? at capacity? ──yes──▶ Release{reason}
//	             │ no
//	             ▼
//	          running ──Start──▶ local service ──Result──▶ buffered ──Results──▶ replica
//	             │                                            ▲            │
//	             ├─ CancelExecution ─▶ Cancel ─▶ CANCELLED ───┤            ▼
//	             ├─ deadline + grace, no result ─▶ TIMED_OUT ─┤      Ack (applied or not)
//	             └─ Execute stream broke ─▶ FAILED ───────────┘            │
//	                                                                       ▼
//	                                                                   forgotten
//
// Capacity counts every execution started and not yet finished. A result stays buffered,
// keyed by execution id and lease epoch, until an Ack names it; it is re-sent at the start of
// every session, so a broken stream never loses a result.
//
// # The local service
//
// The agent lists the service's handlers at start and every Config.HandlerRefresh, and
// reconnects with exponential backoff and jitter (at most 5s) when the Execute stream breaks.
// Executions running on a broken stream fail as retryable with kind "ServiceUnavailable";
// while the service is unreachable, heartbeats say service_healthy=false and new assignments
// are released with reason "service unavailable".
//
// # Registration and shutdown
//
// With Config.Registry set, the agent registers itself (with a time to live) and refreshes the
// registration as the registry asks. The Registrar interface has a gRPC implementation for the
// control plane's built-in registry.
//
// When Serve's context is done the agent drains: it reports draining in heartbeats, releases new
// assignments, lets running executions finish for up to Config.DrainTimeout, then cancels the
// rest, waits for their results to be acknowledged (at most Config.FinalTimeout), deregisters
// and stops.
package agent
