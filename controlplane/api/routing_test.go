package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func TestBadRoutingInput(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	for _, tt := range []struct {
		name    string
		routing *tockv1.Routing
		want    []string
	}{
		{"unknown strategy", &tockv1.Routing{Strategy: 42}, []string{"job.routing.strategy", "42"}},
		{"sharding without shards", &tockv1.Routing{Strategy: tockv1.RoutingStrategy_ROUTING_STRATEGY_SHARDING}, []string{"job.routing.shards", "between 1 and 1000"}},
		{"too many shards", &tockv1.Routing{Strategy: tockv1.RoutingStrategy_ROUTING_STRATEGY_SHARDING, Shards: 1001}, []string{"job.routing.shards", "got 1001"}},
		{"negative shards", &tockv1.Routing{Strategy: tockv1.RoutingStrategy_ROUTING_STRATEGY_SHARDING, Shards: -1}, []string{"job.routing.shards"}},
		{"shards without sharding", &tockv1.Routing{Strategy: tockv1.RoutingStrategy_ROUTING_STRATEGY_RANDOM, Shards: 3}, []string{"job.routing.shards", "only to ROUTING_STRATEGY_SHARDING"}},
		{"hash key without hashing", &tockv1.Routing{HashKey: "k"}, []string{"job.routing.hash_key", "only to ROUTING_STRATEGY_CONSISTENT_HASH"}},
		{"hash key too long", &tockv1.Routing{Strategy: tockv1.RoutingStrategy_ROUTING_STRATEGY_CONSISTENT_HASH, HashKey: strings.Repeat("k", 257)}, []string{"job.routing.hash_key", "257 bytes"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := h.jobs.CreateJob(t.Context(), &tockv1.CreateJobRequest{Job: &tockv1.Job{Name: "job", Handler: "h", Routing: tt.routing}})
			requireInvalid(t, err, tt.want...)
		})
	}
}

func TestRoutingRoundTrip(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	plain := h.createJob(t, &tockv1.Job{Name: "plain", Handler: "h"})
	require.Equal(t, tockv1.RoutingStrategy_ROUTING_STRATEGY_WEIGHTED_LEAST_CONNECTIONS, plain.GetRouting().GetStrategy(), "the default shows")

	for s := range tockv1.RoutingStrategy_name {
		strategy := tockv1.RoutingStrategy(s)
		if strategy == tockv1.RoutingStrategy_ROUTING_STRATEGY_UNSPECIFIED {
			continue
		}
		routing := &tockv1.Routing{Strategy: strategy}
		switch strategy {
		case tockv1.RoutingStrategy_ROUTING_STRATEGY_SHARDING:
			routing.Shards = 1000
		case tockv1.RoutingStrategy_ROUTING_STRATEGY_CONSISTENT_HASH:
			routing.HashKey = "tenant-7"
		}
		name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(strategy.String(), "ROUTING_STRATEGY_"), "_", "-"))
		created := h.createJob(t, &tockv1.Job{Name: name, Handler: "h", Routing: routing})
		require.Equal(t, routing.GetStrategy(), created.GetRouting().GetStrategy(), name)
		require.Equal(t, routing.GetShards(), created.GetRouting().GetShards(), name)
		require.Equal(t, routing.GetHashKey(), created.GetRouting().GetHashKey(), name)
	}

	// Routing is a field UpdateJob changes, alone or with the others.
	resp, err := h.jobs.UpdateJob(t.Context(), &tockv1.UpdateJobRequest{
		Job:        &tockv1.Job{Name: "plain", Routing: &tockv1.Routing{Strategy: tockv1.RoutingStrategy_ROUTING_STRATEGY_ROUND_ROBIN}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"routing"}},
	})
	require.NoError(t, err)
	require.Equal(t, tockv1.RoutingStrategy_ROUTING_STRATEGY_ROUND_ROBIN, resp.GetJob().GetRouting().GetStrategy())

	// REST speaks it too.
	srv := h.rest(t)
	code, body := do(t, http.MethodPost, srv.URL+"/v1/jobs", `{"name":"rest","handler":"h","routing":{"strategy":"ROUTING_STRATEGY_SHARDING","shards":4}}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"shards":4`)
	code, body = do(t, http.MethodPost, srv.URL+"/v1/jobs", `{"name":"rest-bad","handler":"h","routing":{"strategy":"ROUTING_STRATEGY_SHARDING","shards":0}}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "job.routing.shards")
}
