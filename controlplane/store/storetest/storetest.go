// Package storetest is the conformance suite of store.Store. Every store runs it from its own
// tests, against a real database:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, storetest.Harness{NewStore: newStore})
//	}
//
// The suite only speaks store.Store. Where a test needs time to pass, it moves the store's
// clock through the harness's advance hook when the store has one (SQLite's injected clock),
// and otherwise waits, polling the store's own clock, for a few milliseconds of real time to
// pass (PostgreSQL's now()). Leases, TTLs and NotBefore times are therefore relative to
// st.Now and short.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// Harness is what a store's tests give the suite.
type Harness struct {
	// NewStore returns a fresh, empty store for one test and closes it when t ends. advance
	// moves that store's clock forward by d; it is nil when the clock is the database's own
	// and cannot be moved, and the suite then waits for real time to pass instead.
	NewStore func(t *testing.T) (st store.Store, advance func(d time.Duration))
}

// Run runs the conformance suite. Every test is a parallel subtest with a store of its own.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.NewStore == nil {
		t.Fatal("storetest: Harness.NewStore is nil")
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Now", nowTests},
		{"Job", jobTests},
		{"Fire", fireTests},
		{"Execution", executionTests},
		{"Request", requestTests},
		{"Claim", claimTests},
		{"Lease", leaseTests},
		{"Complete", completeTests},
		{"Cancel", cancelTests},
		{"Agent", agentTests},
		{"Replica", replicaTests},
		{"NextNotBefore", nextNotBeforeTests},
		{"Prune", pruneTests},
		{"Scheduling", schedulingTests},
		{"Report", reportTests},
		{"Routing", routingTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, setup(t, h))
				})
			}
		})
	}
}

// test is one conformance test.
type test struct {
	name string
	run  func(t *testing.T, b *bundle)
}

// bundle is what each test starts from: a fresh store and its clock.
type bundle struct {
	ctx     context.Context
	st      store.Store
	advance func(time.Duration)
}

func setup(t *testing.T, h Harness) *bundle {
	t.Helper()
	st, advance := h.NewStore(t)
	require.NotNil(t, st, "Harness.NewStore returned no store")
	return &bundle{ctx: t.Context(), st: st, advance: advance}
}

// now reads the database clock.
func (b *bundle) now(t *testing.T) time.Time {
	t.Helper()
	now, err := b.st.Now(b.ctx)
	require.NoError(t, err)
	return now
}

// pass lets d pass on the database clock: it moves the clock when it can, and otherwise
// polls the clock until d has passed.
func (b *bundle) pass(t *testing.T, d time.Duration) {
	t.Helper()
	if b.advance != nil {
		b.advance(d)
		return
	}
	start := b.now(t)
	give := time.NewTimer(d + 10*time.Second)
	defer give.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for b.now(t).Sub(start) < d {
		select {
		case <-tick.C:
		case <-give.C:
			t.Fatalf("the database clock did not move %s", d)
		}
	}
}

// newJob returns a job with every field a caller sets filled in.
func newJob(name string) store.Job {
	return store.Job{
		Name:        name,
		Handler:     "billing/invoice",
		Service:     "billing",
		Selector:    map[string]string{"zone": "eu"},
		Schedule:    &store.Schedule{Cron: "*/5 * * * *", Timezone: "Europe/Paris"},
		Payload:     []byte(`{"customer":42}`),
		ContentType: "application/json",
		Timeout:     30 * time.Second,
		Retry: store.RetryPolicy{
			MaxAttempts:        3,
			InitialBackoff:     time.Second,
			BackoffCoefficient: 2,
			MaxBackoff:         time.Minute,
			NonRetryableKinds:  []string{"Invalid"},
		},
		Priority: 1,
	}
}

// createJob stores a job.
func (b *bundle) createJob(t *testing.T, job store.Job) store.Job {
	t.Helper()
	created, err := b.st.CreateJob(b.ctx, job)
	require.NoError(t, err)
	return created
}

// newExec returns a manual execution of the job, ready to be stored.
func newExec(job store.Job) store.Execution {
	return store.Execution{
		Job:          job.Name,
		Handler:      job.Handler,
		Service:      job.Service,
		Selector:     job.Selector,
		Priority:     job.Priority,
		Payload:      job.Payload,
		ContentType:  job.ContentType,
		Timeout:      job.Timeout,
		Retry:        job.Retry,
		Trigger:      store.TriggerManual,
		TraceContext: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		TraceID:      "4bf92f3577b34da6a3ce929d0e0e4736",
	}
}

// createExec stores a pending execution of the job, changed by edit when it is not nil.
func (b *bundle) createExec(t *testing.T, job store.Job, edit func(e *store.Execution)) store.Execution {
	t.Helper()
	e := newExec(job)
	if edit != nil {
		edit(&e)
	}
	created, err := b.st.CreateExecution(b.ctx, e)
	require.NoError(t, err)
	return created
}

// pickAll assigns every candidate to agent.
func pickAll(agent string) func([]store.Execution) []store.Assignment {
	return func(candidates []store.Execution) []store.Assignment {
		out := make([]store.Assignment, len(candidates))
		for i, c := range candidates {
			out[i] = store.Assignment{ExecutionID: c.ID, AgentID: agent}
		}
		return out
	}
}

// claim assigns up to limit due executions of the handlers to agent.
func (b *bundle) claim(t *testing.T, agent string, limit int, lease time.Duration, handlers ...string) []store.Execution {
	t.Helper()
	claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
		Handlers: handlers,
		Limit:    limit,
		Lease:    lease,
		Pick:     pickAll(agent),
	})
	require.NoError(t, err)
	return claimed
}

// claimOne creates a pending execution of job and assigns it to agent.
// claimAhead claims for agent-1 with a lookahead.
func (b *bundle) claimAhead(t *testing.T, limit int, lookahead time.Duration, handlers ...string) []store.Execution {
	t.Helper()
	claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
		Handlers: handlers, Limit: limit, Lease: time.Minute, Lookahead: lookahead, Pick: pickAll("agent-1"),
	})
	require.NoError(t, err)
	return claimed
}

func (b *bundle) claimOne(t *testing.T, job store.Job, agent string, lease time.Duration) store.Execution {
	t.Helper()
	e := b.createExec(t, job, nil)
	claimed := b.claim(t, agent, 1, lease, job.Handler)
	require.Len(t, claimed, 1)
	require.Equal(t, e.ID, claimed[0].ID)
	return claimed[0]
}

// get reads an execution.
func (b *bundle) get(t *testing.T, id string) store.Execution {
	t.Helper()
	e, err := b.st.GetExecution(b.ctx, id)
	require.NoError(t, err)
	return e
}

// ref names an execution's current assignment.
func ref(e store.Execution) store.ExecRef {
	return store.ExecRef{ID: e.ID, Epoch: e.LeaseEpoch}
}

// ids returns the executions' ids in order.
func ids(execs []store.Execution) []string {
	out := make([]string, len(execs))
	for i, e := range execs {
		out[i] = e.ID
	}
	return out
}

// retryAfter is a RetryPlan that retries d after the attempt finished.
func retryAfter(d time.Duration) store.RetryPlan {
	return func(e store.Execution) (time.Time, bool) { return e.FinishedAt.Add(d), true }
}

// noRetry is a RetryPlan that never retries.
func noRetry(store.Execution) (time.Time, bool) { return time.Time{}, false }

// mustNotRetry is a RetryPlan that fails the test when it is called.
func mustNotRetry(t *testing.T) store.RetryPlan {
	return func(e store.Execution) (time.Time, bool) {
		t.Errorf("retry plan called for execution %s in state %s", e.ID, e.State)
		return time.Time{}, false
	}
}

// requireTime checks that got is want to the microsecond.
func requireTime(t *testing.T, want, got time.Time, msgAndArgs ...any) {
	t.Helper()
	require.True(t, want.Truncate(time.Microsecond).Equal(got.Truncate(time.Microsecond)),
		"%s: want %s, got %s", fmt.Sprint(msgAndArgs...), want, got)
}

var nowTests = []test{
	{"UTCAndMoving", func(t *testing.T, b *bundle) {
		first := b.now(t)
		require.False(t, first.IsZero())
		require.Equal(t, time.UTC, first.Location())
		b.pass(t, time.Millisecond)
		require.True(t, b.now(t).After(first))
	}},
}
