package dispatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// TestAssignmentCarriesDeadlineAndUpstream checks what an agent is told of an execution's
// timing and inputs: the handler's deadline is the assignment time plus the start-to-close
// timeout (or the default), and a dependent execution carries its upstream results.
func TestAssignmentCarriesDeadlineAndUpstream(t *testing.T) {
	t.Parallel()
	assigned := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := &store.Execution{
		ID: "e-1", Job: "load", Handler: "load", Attempt: 2, LeaseEpoch: 3,
		NominalTime: assigned.Add(-time.Minute), AssignedAt: assigned, Timeout: 90 * time.Second,
		Upstream: []store.UpstreamResult{{Job: "transform", ExecutionID: "t-1", Output: []byte(`{"rows":2}`), ContentType: "application/json"}},
	}
	a := assignmentToProto(e, time.Minute)
	require.Equal(t, assigned.Add(90*time.Second), a.GetDeadline().AsTime())
	require.Len(t, a.GetUpstream(), 1)
	require.Equal(t, "transform", a.GetUpstream()[0].GetJob())
	require.Equal(t, "t-1", a.GetUpstream()[0].GetExecutionId())
	require.Equal(t, []byte(`{"rows":2}`), a.GetUpstream()[0].GetOutput())
	require.Equal(t, "application/json", a.GetUpstream()[0].GetContentType())

	e.Timeout, e.Upstream = 0, nil
	a = assignmentToProto(e, time.Minute)
	require.Equal(t, assigned.Add(time.Minute), a.GetDeadline().AsTime(), "the default timeout")
	require.Empty(t, a.GetUpstream())
}
