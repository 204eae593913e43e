package agent

import (
	"testing"

	"github.com/stretchr/testify/require"

	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

func TestStartRequestCarriesUpstreamResults(t *testing.T) {
	t.Parallel()
	a := &agentv1.Assignment{
		ExecutionId: "e-2",
		Handler:     "load",
		Upstream: []*agentv1.Upstream{
			{Job: "extract", ExecutionId: "e-1", Output: []byte(`{"rows":3}`), ContentType: "application/json"},
		},
	}
	start := startRequest(a, map[string]string{"traceparent": "tp"}).GetStart()
	require.Len(t, start.GetUpstream(), 1)
	u := start.GetUpstream()[0]
	require.Equal(t, "extract", u.GetJob())
	require.Equal(t, "e-1", u.GetExecutionId())
	require.JSONEq(t, `{"rows":3}`, string(u.GetOutput()))
	require.Equal(t, "application/json", u.GetContentType())
	require.Equal(t, "tp", start.GetTraceContext()["traceparent"])
}
