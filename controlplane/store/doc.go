// Package store is the storage seam of the control plane: the records the control plane keeps
// (jobs, fires, executions, agents) and the Store interface every storage engine implements.
//
// Implementations live in sub-packages: sqlite (the embedded single-machine default) and, for
// CockroachDB and PostgreSQL, pg. One conformance suite (storetest) runs against each of them.
//
// An execution moves through these states; every change after ASSIGNED is conditional on the
// lease epoch, so a report from an agent that lost its lease is rejected, never applied:
//
//	         ClaimExecutions          MarkStarted          CompleteExecutions
//	PENDING ───────────────▶ ASSIGNED ──────────▶ RUNNING ────────────────────▶ SUCCEEDED
//	   ▲                        │                    │                          FAILED
//	   │  ReleaseExecutions     │                    │                          TIMED_OUT
//	   └────────────────────────┘                    │                          CANCELLED
//	                            │ ExpireLeases       │
//	                            └────────────────────┴──▶ LOST (a retry may follow as a new
//	                                                        PENDING execution, attempt+1)
//
// Methods that take a callback (a "plan") call it inside the transaction. Transactions can
// be retried on serialization conflicts, so a plan must be a pure function of its arguments.
package store
