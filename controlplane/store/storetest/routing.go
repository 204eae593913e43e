package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

var routingTests = []test{
	{"JobRouting", func(t *testing.T, b *bundle) {
		plain := b.createJob(t, newJob("plain"))
		require.True(t, plain.Routing.IsZero(), "no routing is the default routing")

		job := newJob("hashed")
		job.Routing = store.Routing{Strategy: store.RouteConsistentHash, HashKey: "customer-42"}
		created := b.createJob(t, job)
		require.Equal(t, job.Routing, created.Routing)
		got, err := b.st.GetJob(b.ctx, "hashed")
		require.NoError(t, err)
		require.Equal(t, job.Routing, got.Routing)

		updated, err := b.st.UpdateJob(b.ctx, "hashed", func(j *store.Job) error {
			j.Routing = store.Routing{Strategy: store.RouteSharding, Shards: 12}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, store.Routing{Strategy: store.RouteSharding, Shards: 12}, updated.Routing)
		listed, err := b.st.ListJobs(b.ctx, store.ListJobsParams{})
		require.NoError(t, err)
		require.Len(t, listed, 2)
		require.Equal(t, updated.Routing, listed[0].Routing)

		updated, err = b.st.UpdateJob(b.ctx, "hashed", func(j *store.Job) error {
			j.Routing = store.Routing{}
			return nil
		})
		require.NoError(t, err)
		require.True(t, updated.Routing.IsZero())
	}},
	{"ExecutionRoute", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		route := store.Route{
			Routing:     store.Routing{Strategy: store.RouteBroadcast},
			ShardIndex:  2,
			ShardTotal:  5,
			PinnedAgent: "agent-7",
		}
		e := b.createExec(t, job, func(e *store.Execution) { e.Route = route })
		require.Equal(t, route, e.Route)
		require.Equal(t, route, b.get(t, e.ID).Route)
		plain := b.createExec(t, job, nil)
		require.Equal(t, store.Route{}, b.get(t, plain.ID).Route)
		require.Equal(t, job.Routing, store.NewExecution(job, b.now(t), store.TriggerManual).Route.Routing)
	}},
	{"ClaimFansOut", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("sharded"))
		sharding := store.Routing{Strategy: store.RouteSharding, Shards: 3}
		tmpl := b.createExec(t, job, func(e *store.Execution) { e.Route = store.Route{Routing: sharding} })
		require.True(t, tmpl.Route.FansOut())

		var offered []store.Execution
		claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
			Handlers: []string{job.Handler},
			Limit:    10,
			Lease:    time.Minute,
			FanOut: func(c store.Execution) []store.Route {
				require.Equal(t, tmpl.ID, c.ID)
				routes := make([]store.Route, c.Route.Shards)
				for i := range routes {
					routes[i] = store.Route{Routing: c.Route.Routing, ShardIndex: i, ShardTotal: c.Route.Shards}
				}
				return routes
			},
			Pick: func(candidates []store.Execution) []store.Assignment {
				offered = candidates
				return pickAll("agent-1")(candidates)
			},
		})
		require.NoError(t, err)
		require.Len(t, offered, 3, "the template and two copies are offered")
		require.Len(t, claimed, 3)
		require.Equal(t, tmpl.ID, offered[0].ID, "the template takes the first route")
		for i, e := range claimed {
			require.Equal(t, i, e.Route.ShardIndex)
			require.Equal(t, 3, e.Route.ShardTotal)
			require.False(t, e.Route.FansOut())
			require.Equal(t, job.Name, e.Job)
			require.Equal(t, tmpl.NominalTime, e.NominalTime)
			require.Equal(t, tmpl.Payload, e.Payload)
			require.Equal(t, tmpl.Trigger, e.Trigger)
			require.Equal(t, 1, e.Attempt)
			require.Equal(t, store.ExecAssigned, e.State)
		}
		// Fanned out once: a later claim finds nothing left to fan out.
		again, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
			Handlers: []string{job.Handler}, Limit: 10, Lease: time.Minute, Pick: pickAll("agent-1"),
			FanOut: func(store.Execution) []store.Route {
				t.Error("fan-out called for executions fanned out already")
				return nil
			},
		})
		require.NoError(t, err)
		require.Empty(t, again)
	}},
	{"ClaimWithoutFanOutLeavesTemplate", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("broadcast"))
		tmpl := b.createExec(t, job, func(e *store.Execution) {
			e.Route = store.Route{Routing: store.Routing{Strategy: store.RouteBroadcast}}
		})
		other := b.createExec(t, job, nil)
		for _, fanOut := range []func(store.Execution) []store.Route{nil, func(store.Execution) []store.Route { return nil }} {
			var offered []string
			claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
				Handlers: []string{job.Handler}, Limit: 10, Lease: time.Minute, FanOut: fanOut,
				Pick: func(candidates []store.Execution) []store.Assignment {
					offered = ids(candidates)
					return nil
				},
			})
			require.NoError(t, err)
			require.Empty(t, claimed)
			require.Equal(t, []string{other.ID}, offered, "a template with no fan-out is not offered")
			got := b.get(t, tmpl.ID)
			require.Equal(t, store.ExecPending, got.State)
			require.True(t, got.Route.FansOut())
		}
	}},
	{"ClaimHonoursPin", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("pinned"))
		e := b.createExec(t, job, func(e *store.Execution) {
			e.Route = store.Route{Routing: store.Routing{Strategy: store.RouteBroadcast}, PinnedAgent: "agent-a"}
		})
		require.Empty(t, b.claim(t, "agent-b", 10, time.Minute, job.Handler), "pinned to another agent")
		require.Equal(t, store.ExecPending, b.get(t, e.ID).State)
		claimed := b.claim(t, "agent-a", 10, time.Minute, job.Handler)
		require.Len(t, claimed, 1)
		require.Equal(t, "agent-a", claimed[0].AgentID)
	}},
	{"RetryKeepsRoute", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("retried"))
		route := store.Route{Routing: store.Routing{Strategy: store.RouteBroadcast}, PinnedAgent: "agent-a"}
		b.createExec(t, job, func(e *store.Execution) { e.Route = route })
		claimed := b.claim(t, "agent-a", 1, time.Minute, job.Handler)
		require.Len(t, claimed, 1)
		out, err := b.st.CompleteExecutions(b.ctx, []store.Completion{{
			ExecRef: ref(claimed[0]), State: store.ExecFailed, Error: &store.ExecError{Message: "boom", Retryable: true},
		}}, retryAfter(0))
		require.NoError(t, err)
		require.NotEmpty(t, out[0].RetryID)
		require.Equal(t, route, b.get(t, out[0].RetryID).Route)

		sharded := store.Route{Routing: store.Routing{Strategy: store.RouteSharding, Shards: 4}, ShardIndex: 3, ShardTotal: 4}
		b.createExec(t, job, func(e *store.Execution) { e.Route = sharded })
		claimed = b.claim(t, "agent-b", 10, time.Millisecond, job.Handler)
		require.Len(t, claimed, 1)
		b.pass(t, 5*time.Millisecond)
		lost, err := b.st.ExpireLeases(b.ctx, 10, retryAfter(0))
		require.NoError(t, err)
		require.Len(t, lost, 1)
		execs, err := b.st.ListExecutions(b.ctx, store.ListExecutionsParams{Job: job.Name, State: store.ExecPending})
		require.NoError(t, err)
		var retries []store.Execution
		for _, e := range execs {
			if e.RetryOf == lost[0].ID {
				retries = append(retries, e)
			}
		}
		require.Len(t, retries, 1)
		require.Equal(t, sharded, retries[0].Route, "a lost shard is retried as the same shard")
	}},
	{"ClaimExpectsDurations", func(t *testing.T, b *bundle) {
		sejf := store.Routing{Strategy: store.RouteShortestExpectedJobFirst}
		job := newJob("learned")
		job.Routing = sejf
		job = b.createJob(t, job)
		other := b.createJob(t, newJob("other"))
		route := func(e *store.Execution) { e.Route = store.Route{Routing: sejf} }

		// Three runs that took 1s, 2s and 4s, in that order.
		base := b.now(t).Add(-time.Hour)
		var runs []time.Duration
		for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			b.createExec(t, job, route)
			claimed := b.claim(t, "agent-1", 1, time.Minute, job.Handler)
			require.Len(t, claimed, 1)
			start := base.Add(time.Duration(i) * time.Minute)
			_, err := b.st.CompleteExecutions(b.ctx, []store.Completion{{
				ExecRef: ref(claimed[0]), State: store.ExecSucceeded, StartedAt: start, FinishedAt: start.Add(d),
			}}, noRetry)
			require.NoError(t, err)
			runs = append(runs, d)
		}
		// A failed run does not count.
		b.createExec(t, job, route)
		failed := b.claim(t, "agent-1", 1, time.Minute, job.Handler)
		_, err := b.st.CompleteExecutions(b.ctx, []store.Completion{{
			ExecRef: ref(failed[0]), State: store.ExecFailed, StartedAt: base, FinishedAt: base.Add(time.Hour),
		}}, noRetry)
		require.NoError(t, err)

		pending := b.createExec(t, job, route)
		plain := b.createExec(t, other, nil)
		fresh := b.createJob(t, newJob("fresh"))
		unknown := b.createExec(t, fresh, route)
		expected := map[string]time.Duration{}
		_, err = b.st.ClaimExecutions(b.ctx, store.ClaimParams{
			Handlers: []string{job.Handler}, Limit: 10, Lease: time.Minute,
			Pick: func(candidates []store.Execution) []store.Assignment {
				for _, c := range candidates {
					expected[c.ID] = c.ExpectedDuration
				}
				return nil
			},
		})
		require.NoError(t, err)
		require.Len(t, expected, 3)
		want := store.ExpectedDuration(runs)
		require.InDelta(t, float64(want), float64(expected[pending.ID]), float64(time.Millisecond))
		require.Greater(t, want, 2*time.Second, "the newest run weighs most")
		require.Zero(t, expected[plain.ID], "only shortest-expected-job-first executions are told")
		require.Zero(t, expected[unknown.ID], "a job with no history has no expected duration")
	}},
}
