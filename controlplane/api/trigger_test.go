package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func TestTriggerRequestID(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	h.createJob(t, &tockv1.Job{Name: "report", Handler: "h"})
	trigger := func(key string, payload *structpb.Value) *tockv1.Execution {
		t.Helper()
		resp, err := h.jobs.TriggerJob(t.Context(), &tockv1.TriggerJobRequest{Name: "report", RequestId: key, Payload: payload})
		require.NoError(t, err)
		return resp.GetExecution()
	}

	first := trigger("0b3c6a1e-5f1d-4c38-9d2e-7f6f0c1a2b3c", structpb.NewNumberValue(1))
	again := trigger("0b3c6a1e-5f1d-4c38-9d2e-7f6f0c1a2b3c", structpb.NewNumberValue(2))
	require.Equal(t, first.GetId(), again.GetId(), "a repeated request id returns the first execution")
	require.Equal(t, first.GetTraceId(), again.GetTraceId())
	other := trigger("order-42:retry_1", nil)
	require.NotEqual(t, first.GetId(), other.GetId())
	plain1, plain2 := trigger("", nil), trigger("", nil)
	require.NotEqual(t, plain1.GetId(), plain2.GetId(), "without a request id every call creates an execution")

	list, err := h.execs.ListExecutions(t.Context(), &tockv1.ListExecutionsRequest{Job: "report"})
	require.NoError(t, err)
	require.Len(t, list.GetExecutions(), 4)

	// Over REST, the same key in the body.
	srv := h.rest(t)
	var ids []string
	for range 2 {
		code, body := do(t, http.MethodPost, srv.URL+"/v1/jobs/report:trigger", `{"requestId": "rest-1"}`)
		require.Equal(t, http.StatusOK, code, body)
		var e struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(body), &e))
		ids = append(ids, e.ID)
	}
	require.NotEmpty(t, ids[0])
	require.Equal(t, ids[0], ids[1])
}

func TestTriggerBadRequestID(t *testing.T) {
	t.Parallel()
	h := newAPI(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	h.createJob(t, &tockv1.Job{Name: "report", Handler: "h"})
	for _, key := range []string{"has space", "slash/es", "nul\x00", "é"} {
		_, err := h.jobs.TriggerJob(t.Context(), &tockv1.TriggerJobRequest{Name: "report", RequestId: key})
		requireInvalid(t, err, "request_id", "is not a request id")
	}
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	_, err := h.jobs.TriggerJob(t.Context(), &tockv1.TriggerJobRequest{Name: "report", RequestId: string(long)})
	requireInvalid(t, err, "request_id", "129 bytes long")
}
