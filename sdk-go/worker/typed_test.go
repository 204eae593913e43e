package worker_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
	"google.golang.org/protobuf/proto"
)

// run serves w in memory for the test and runs one execution.
func run(t *testing.T, agent *workertest.Agent, s workertest.Start) workertest.Result {
	t.Helper()
	res, err := agent.Run(t.Context(), s)
	require.NoError(t, err)
	return res
}

// serveAgent serves w in memory until the test ends.
func serveAgent(t *testing.T, w *worker.Worker) *workertest.Agent {
	t.Helper()
	agent := workertest.Serve(w, workertest.Options{})
	t.Cleanup(func() { require.NoError(t, agent.Close()) })
	return agent
}

type order struct {
	ID    string   `json:"id"`
	Items []string `json:"items"`
}

type receipt struct {
	ID    string `json:"id"`
	Count int    `json:"count"`
}

func TestHandleTypedJSON(t *testing.T) {
	t.Parallel()
	w := worker.New(worker.Options{Logger: discardLogger()})
	worker.HandleTyped(w, "order", func(_ context.Context, in order) (receipt, error) {
		if in.ID == "bad" {
			return receipt{}, &worker.Error{Kind: "Rejected", Message: "bad order", Retryable: true}
		}
		return receipt{ID: in.ID, Count: len(in.Items)}, nil
	})
	worker.HandleTyped(w, "ptr", func(_ context.Context, in *order) (*receipt, error) {
		if in == nil {
			return nil, nil
		}
		return &receipt{ID: in.ID}, nil
	})
	agent := serveAgent(t, w)

	tests := []struct {
		name, handler, contentType, payload string
		want                                string
	}{
		{"json", "order", "application/json", `{"id":"o1","items":["a","b"]}`, `{"id":"o1","count":2}`},
		{"no content type", "order", "", `{"id":"o2"}`, `{"id":"o2","count":0}`},
		{"charset parameter", "order", "application/json; charset=utf-8", `{"id":"o3"}`, `{"id":"o3","count":0}`},
		{"json suffix", "order", "application/vnd.shop.order+json", `{"id":"o4"}`, `{"id":"o4","count":0}`},
		{"unknown fields ignored", "order", "", `{"id":"o5","extra":true}`, `{"id":"o5","count":0}`},
		{"empty payload is the zero value", "order", "application/json", ``, `{"id":"","count":0}`},
		{"pointer types", "ptr", "", `{"id":"p1"}`, `{"id":"p1","count":0}`},
		{"nil pointer output", "ptr", "", ``, `null`},
	}
	for _, tt := range tests {
		res := run(t, agent, workertest.Start{Handler: tt.handler, ContentType: tt.contentType, Payload: []byte(tt.payload)})
		require.Equal(t, workertest.Succeeded, res.Outcome, tt.name)
		require.Equal(t, "application/json", res.ContentType, tt.name)
		require.Equal(t, tt.want, string(res.Output), tt.name)
	}

	// The handler's own errors pass through unchanged.
	res := run(t, agent, workertest.Start{Handler: "order", Payload: []byte(`{"id":"bad"}`)})
	require.Equal(t, &worker.Error{Kind: "Rejected", Message: "bad order", Retryable: true}, res.Err)
}

func TestHandleTypedInvalidPayload(t *testing.T) {
	t.Parallel()
	called := false
	w := worker.New(worker.Options{Logger: discardLogger()})
	worker.HandleTyped(w, "order", func(_ context.Context, in order) (receipt, error) {
		called = true
		return receipt{}, nil
	})
	agent := serveAgent(t, w)

	tests := []struct {
		name, contentType, payload string
		wantIn                     []string
	}{
		{"not JSON", "", `{"id":`, []string{"decode the JSON payload into worker_test.order", "unexpected end of JSON input"}},
		{"wrong type", "application/json", `{"items":"a"}`, []string{"application/json payload", "cannot unmarshal string"}},
		{"protobuf into a struct", "application/x-protobuf", "\x0a\x01a", []string{"worker_test.order is not a protobuf message"}},
		{"unsupported content type", "text/csv", "a,b", []string{"text/csv payload", "unsupported content type"}},
		{"malformed content type", "application/json;;", "{}", []string{"unsupported content type"}},
	}
	for _, tt := range tests {
		res := run(t, agent, workertest.Start{Handler: "order", ContentType: tt.contentType, Payload: []byte(tt.payload)})
		require.Equal(t, workertest.Failed, res.Outcome, tt.name)
		require.Equal(t, "InvalidPayload", res.Err.Kind, tt.name)
		require.False(t, res.Err.Retryable, tt.name)
		for _, s := range tt.wantIn {
			require.Contains(t, res.Err.Message, s, tt.name)
		}
	}
	require.False(t, called, "the handler must not run on a payload that does not decode")
}

func TestHandleTypedProtobuf(t *testing.T) {
	t.Parallel()
	w := worker.New(worker.Options{Logger: discardLogger()})
	worker.HandleTyped(w, "rename", func(_ context.Context, in *handlerv1.HandlerInfo) (*handlerv1.HandlerInfo, error) {
		return &handlerv1.HandlerInfo{Name: in.GetName() + "-renamed"}, nil
	})
	worker.HandleTyped(w, "toJSON", func(_ context.Context, in *handlerv1.HandlerInfo) (receipt, error) {
		return receipt{ID: in.GetName()}, nil
	})
	agent := serveAgent(t, w)

	// JSON in, protojson out, compact.
	res := run(t, agent, workertest.Start{Handler: "rename", ContentType: "application/json", Payload: []byte(`{ "name" : "a", "unknown": 1 }`)})
	require.Equal(t, workertest.Succeeded, res.Outcome, res.Err)
	require.Equal(t, "application/json", res.ContentType)
	require.Equal(t, `{"name":"a-renamed"}`, string(res.Output))

	// Binary in, binary out; every protobuf media type is understood.
	for _, ct := range []string{"application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf"} {
		in, err := proto.Marshal(&handlerv1.HandlerInfo{Name: "b"})
		require.NoError(t, err)
		res = run(t, agent, workertest.Start{Handler: "rename", ContentType: ct, Payload: in})
		require.Equal(t, workertest.Succeeded, res.Outcome, res.Err)
		require.Equal(t, "application/x-protobuf", res.ContentType)
		var out handlerv1.HandlerInfo
		require.NoError(t, proto.Unmarshal(res.Output, &out))
		require.Equal(t, "b-renamed", out.GetName())
	}

	// An empty payload is an empty message, not nil.
	res = run(t, agent, workertest.Start{Handler: "rename", ContentType: "application/x-protobuf"})
	require.Equal(t, workertest.Succeeded, res.Outcome, res.Err)

	// A struct output answers in JSON, whatever the input.
	res = run(t, agent, workertest.Start{Handler: "toJSON", ContentType: "application/x-protobuf", Payload: []byte("\x0a\x01c")})
	require.Equal(t, "application/json", res.ContentType)
	require.JSONEq(t, `{"id":"c","count":0}`, string(res.Output))

	// Bad protobuf and bad protojson are invalid payloads.
	for _, bad := range []workertest.Start{
		{Handler: "rename", ContentType: "application/x-protobuf", Payload: []byte{0xff, 0xff}},
		{Handler: "rename", ContentType: "application/json", Payload: []byte(`{"name": 1}`)},
	} {
		res = run(t, agent, bad)
		require.Equal(t, "InvalidPayload", res.Err.Kind)
		require.Contains(t, res.Err.Message, "*handlerv1.HandlerInfo")
	}
}

func TestHandleTypedInvalidResult(t *testing.T) {
	t.Parallel()
	w := worker.New(worker.Options{Logger: discardLogger()})
	worker.HandleTyped(w, "inf", func(context.Context, struct{}) (float64, error) { return math.Inf(1), nil })
	agent := serveAgent(t, w)
	res := run(t, agent, workertest.Start{Handler: "inf"})
	require.Equal(t, workertest.Failed, res.Outcome)
	require.Equal(t, "InvalidResult", res.Err.Kind)
	require.False(t, res.Err.Retryable)
	require.Contains(t, res.Err.Message, "encode the handler's float64 output")
}

func TestHandleTypedPanicsOnProgrammerError(t *testing.T) {
	t.Parallel()
	w := worker.New(worker.Options{})
	fn := func(context.Context, order) (receipt, error) { return receipt{}, nil }
	require.Panics(t, func() { worker.HandleTyped[order, receipt](w, "nil", nil) })
	require.Panics(t, func() { worker.HandleTyped(w, "", fn) })
	worker.HandleTyped(w, "x", fn)
	require.Panics(t, func() { worker.HandleTyped(w, "x", fn) })
	require.Panics(t, func() { w.Handle("x", echo) })
}

func TestHandleTypedSeesContext(t *testing.T) {
	t.Parallel()
	w := worker.New(worker.Options{Logger: discardLogger()})
	worker.HandleTyped(w, "ctx", func(ctx context.Context, _ struct{}) (string, error) {
		exec, ok := worker.ExecutionFromContext(ctx)
		if !ok {
			return "", errors.New("no execution")
		}
		return exec.Job, nil
	})
	agent := serveAgent(t, w)
	res := run(t, agent, workertest.Start{Handler: "ctx", Job: "nightly"})
	require.Equal(t, `"nightly"`, string(res.Output))
}
