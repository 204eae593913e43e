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
// registration as the registry asks, and at once when its handlers or its readiness change.
// The agent is ready while a replica holds a session with it (or held one less than
// Config.SessionGrace ago), the local service is reachable and it is not draining. The
// Registrar interface has two implementations:
//
//   - GRPCRegistrar, for the control plane's built-in registry (--discovery builtin);
//   - ConsulRegistrar (--discovery consul), which registers a service with the local Consul
//     agent: name "tock-agent" (ConsulConfig.ServiceName), tags "tock-agent" and the Tock
//     service, the advertised address and port, Consul weights {passing: weight, warning: 1},
//     the agent's details in the service meta (DecodeConsulMeta reads them back), and two
//     checks. "<service id>:grpc" has Consul call the agent's grpc.health.v1 service every
//     5s; it turns critical when the agent drains or dies, and Consul removes the service after
//     a minute of that. "<service id>:session" is a TTL check the agent sets passing while it
//     is ready and critical otherwise, with the reason as its output; a hung agent stops
//     refreshing it and it expires. When Consul answers that it has no such check (its agent
//     restarted without state), the agent registers the service again.
//
// When Serve's context is done the agent drains: it reports draining in heartbeats and to the
// registry, releases new assignments, lets running executions finish for up to
// Config.DrainTimeout, then cancels the rest, waits for their results to be acknowledged (at
// most Config.FinalTimeout), deregisters and stops.
//
// # Observability
//
// Each execution has a span, "tock.agent.execute <handler>", from assignment to result: a
// child of the assignment's W3C trace context, with the execution id, job, handler, attempt,
// lease epoch and agent id as attributes and the outcome as its status. The Start message
// carries the agent span's trace context, so the handler's span (SDK) is its child. The gRPC
// server (one span per session) and the client to the local service (one span per Execute
// stream) are traced with otelgrpc. Spans come from Config.TracerProvider; tock-agent makes
// an OTLP exporter from the standard OTEL_* environment when it names an endpoint.
//
// Log lines about an execution carry execution_id, lease_epoch, handler, trace_id and span_id.
//
// With Config.Registerer set, the agent's Prometheus metrics (prefix tock_agent_) count
// executions started and finished by outcome, releases by reason, results re-sent, session
// connects and disconnects, service disconnects and registration errors; gauges show
// executions running, capacity, unacknowledged results, and whether a session is live, the
// service connected and the agent draining; a histogram, by handler and outcome, times each
// execution on the service. tock-agent --metrics-addr serves them at /metrics, with /healthz.
package agent
