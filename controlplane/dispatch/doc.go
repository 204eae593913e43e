// Package dispatch assigns pending executions to agents and applies what agents report.
//
// # Ownership
//
// Each agent is owned by exactly one live replica. Replicas register themselves in the
// replica registry (discovery.Replicas) with a time to live and refresh it every TTL/3; every
// DiscoveryInterval a replica reads the live set and the agents, and owns the agents that
// rendezvous hashing (Owner) gives it among the live replicas. Every replica computes the
// same answer from the same set with no coordination, and when a replica leaves only its
// agents move.
//
//	replica registry ──(every 1s)──▶ live set {a, b, c} ──Owner(agent, set)──▶ owned agents
//	                                                                            │
//	          start sessions with agents now owned, stop those owned elsewhere ◀┘
//
// A replica that stops deregisters first, so its agents move at once; one that dies is
// dropped when its registration lapses (ReplicaTTL), and its agents move within about
// ReplicaTTL plus DiscoveryInterval. When the set cannot be read, the last known one is kept.
// A replica owns nothing unless its own registration is known to hold, and it never assigns
// to, nor reconnects to, an agent it does not own. The new owner opens its session with a
// higher session epoch (taken from the database clock, which every replica shares), so the
// agent ends the previous owner's session; the agent then re-sends the results it buffered,
// which apply under their unchanged lease epochs.
//
// # Sessions and dispatch
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
// A session's reader never waits for the store. It hands Started, Release and Results to the
// stream's reports writer, which applies everything that arrived while its previous write was
// in flight at once: MarkStarted, then ReleaseExecutions, then one CompleteExecutions for up
// to 1,000 results, acknowledged in one message once the transaction commits. An execution
// whose result is in the same write is not marked running first: its start time goes with
// the result, and the store keeps the earlier of the two starts. A write the store gives up on
// because it kept conflicting with concurrent transactions (store.ErrContended) is split in
// halves, down to single items, since a large batch (results re-sent after an outage) can lose
// every retry to the smaller transactions around it. A failed result write ends the stream,
// and the agent sends its unacknowledged results again on the next one.
// Heartbeats have a writer of their own, so that lease extensions never wait behind results;
// only the newest heartbeat's executions are extended, less those whose results have arrived
// since. The store accepts these writes in any order: a lease extension or start applied
// after the execution's result or release changes nothing. When the stream ends, the writers
// apply what they hold within five seconds, without acknowledging it.
//
// # Placement
//
// Which candidates go to which agents is decided by a pure core (strategy.go): the claim's
// candidates and the agents as they stand in, assignments out, never beyond an agent's free
// capacity. Each execution carries its job's routing strategy: weighted least connections
// (the default), least connections, round robin, smooth weighted round robin, random,
// consistent hash over every replica's agents, broadcast and sharding (a fire's execution is
// made, in the claim's transaction, into one pinned execution per live agent, or into its
// shards) and shortest expected job first (candidates of a priority reordered by their jobs'
// recent run times). A claim reads more candidates than there are free slots, so that the
// order has something to choose from and executions waiting for one agent do not hold up the
// others. An agent silent for three heartbeat intervals is offered nothing; one that discovery
// drops while it drains keeps its session until its work is done. With a discovery source that
// does not keep agents in the store (Consul), the owner records its agents there for the API.
//
// # Timeliness
//
// Executions carry a not-before time on the database clock: a fire's nominal time, a
// retry's backoff. The local scheduler tells the loop of the fires it records (WakeAt); work
// created by other replicas is found at each poll (PollInterval), where the loop asks the
// store for the earliest not-before time among its agents' handlers and arms its timer on it.
// Timers are armed on the local clock through the measured offset between the two clocks
// (package dbclock), so work starts at its nominal time on every replica.
//
// Leases that lapse are expired by a janitor loop: the execution becomes LOST and its retry
// is scheduled under the job's retry policy.
package dispatch
