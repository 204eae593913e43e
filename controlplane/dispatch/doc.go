// Package dispatch assigns pending executions to agents and applies what agents report.
//
// A Dispatcher holds one session per agent it owns: it dials the agent, opens the
// tock.agent.v1 Connect stream, and keeps it up with backoff. The dispatch loop claims as many
// pending executions as its agents have free capacity, in one store transaction that also
// picks an agent for each (weighted least connections by default), and sends the
// assignments only after that transaction commits. Each session applies its agent's reports:
// heartbeats extend leases, Started marks executions running, Results complete them (the
// store rejects a result whose lease epoch is stale) and are acknowledged only once recorded,
// Release puts executions back to pending.
//
//	scheduler ──WakeAt(nominal)──▶ dispatch loop ──ClaimExecutions──▶ store
//	                                    │ Assign (after commit)
//	                                    ▼
//	                      session ◀──── Connect stream ────▶ agent
//	                         │ Heartbeat/Started/Results/Release
//	                         └──────────▶ store (ExtendLeases, MarkStarted, CompleteExecutions…)
//
// Leases that lapse are expired by a janitor loop: the execution becomes LOST and its retry
// is scheduled under the job's retry policy.
package dispatch
