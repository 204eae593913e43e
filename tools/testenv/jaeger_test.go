package testenv

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// span is what the tests send: one OTLP span.
type span struct {
	traceID, spanID, parentID string // hex
	name                      string
	attrs                     map[string]string
}

// sendHTTP exports spans of service to Jaeger over OTLP/HTTP with JSON bodies.
func sendHTTP(t *testing.T, j *JaegerServer, service string, spans ...span) {
	t.Helper()
	end := time.Now()
	var parts []string
	for _, s := range spans {
		var attrs []string
		for k, v := range s.attrs {
			attrs = append(attrs, fmt.Sprintf(`{"key":%q,"value":{"stringValue":%q}}`, k, v))
		}
		parts = append(parts, fmt.Sprintf(
			`{"traceId":%q,"spanId":%q,"parentSpanId":%q,"name":%q,"kind":2,"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[%s]}`,
			s.traceID, s.spanID, s.parentID, s.name, end.Add(-time.Millisecond).UnixNano(), end.UnixNano(), strings.Join(attrs, ",")))
	}
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]},`+
		`"scopeSpans":[{"scope":{"name":"testenv"},"spans":[%s]}]}]}`, service, strings.Join(parts, ","))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+j.OTLPHTTPAddr+"/v1/traces", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := j.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
}

// sendGRPC exports spans of service to Jaeger over OTLP/gRPC. The request is encoded by hand
// (opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest) to keep the OTLP
// packages out of the module.
func sendGRPC(t *testing.T, j *JaegerServer, service string, spans ...span) {
	t.Helper()
	conn, err := grpc.NewClient(j.OTLPGRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	req := exportRequest(t, service, time.Now(), spans...)
	var resp []byte
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &req, &resp,
		grpc.ForceCodecV2(rawCodec{}))
	require.NoError(t, err)
}

// exportRequest encodes an ExportTraceServiceRequest.
func exportRequest(t *testing.T, service string, end time.Time, spans ...span) []byte {
	keyValue := func(k, v string) []byte {
		var anyValue []byte
		anyValue = protowire.AppendTag(anyValue, 1, protowire.BytesType) // string_value
		anyValue = protowire.AppendString(anyValue, v)
		var kv []byte
		kv = protowire.AppendTag(kv, 1, protowire.BytesType) // key
		kv = protowire.AppendString(kv, k)
		kv = protowire.AppendTag(kv, 2, protowire.BytesType) // value
		return protowire.AppendBytes(kv, anyValue)
	}
	id := func(h string) []byte {
		b, err := hex.DecodeString(h)
		require.NoError(t, err)
		return b
	}
	var scopeSpans []byte
	for _, s := range spans {
		var sp []byte
		sp = protowire.AppendTag(sp, 1, protowire.BytesType) // trace_id
		sp = protowire.AppendBytes(sp, id(s.traceID))
		sp = protowire.AppendTag(sp, 2, protowire.BytesType) // span_id
		sp = protowire.AppendBytes(sp, id(s.spanID))
		if s.parentID != "" {
			sp = protowire.AppendTag(sp, 4, protowire.BytesType) // parent_span_id
			sp = protowire.AppendBytes(sp, id(s.parentID))
		}
		sp = protowire.AppendTag(sp, 5, protowire.BytesType) // name
		sp = protowire.AppendString(sp, s.name)
		sp = protowire.AppendTag(sp, 6, protowire.VarintType) // kind: SPAN_KIND_SERVER
		sp = protowire.AppendVarint(sp, 2)
		sp = protowire.AppendTag(sp, 7, protowire.Fixed64Type) // start_time_unix_nano
		sp = protowire.AppendFixed64(sp, uint64(end.Add(-time.Millisecond).UnixNano()))
		sp = protowire.AppendTag(sp, 8, protowire.Fixed64Type) // end_time_unix_nano
		sp = protowire.AppendFixed64(sp, uint64(end.UnixNano()))
		for k, v := range s.attrs {
			sp = protowire.AppendTag(sp, 9, protowire.BytesType) // attributes
			sp = protowire.AppendBytes(sp, keyValue(k, v))
		}
		scopeSpans = protowire.AppendTag(scopeSpans, 2, protowire.BytesType) // spans
		scopeSpans = protowire.AppendBytes(scopeSpans, sp)
	}
	var resource []byte
	resource = protowire.AppendTag(resource, 1, protowire.BytesType) // attributes
	resource = protowire.AppendBytes(resource, keyValue("service.name", service))
	var resourceSpans []byte
	resourceSpans = protowire.AppendTag(resourceSpans, 1, protowire.BytesType) // resource
	resourceSpans = protowire.AppendBytes(resourceSpans, resource)
	resourceSpans = protowire.AppendTag(resourceSpans, 2, protowire.BytesType) // scope_spans
	resourceSpans = protowire.AppendBytes(resourceSpans, scopeSpans)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType) // resource_spans
	return protowire.AppendBytes(req, resourceSpans)
}

func TestJaeger(t *testing.T) {
	t.Parallel()

	t.Run("span over OTLP/HTTP", func(t *testing.T) {
		t.Parallel()
		j := Jaeger(t)
		traceID, root, child := randomHex(t, 16), randomHex(t, 8), randomHex(t, 8)
		sendHTTP(t, j, "tock-http",
			span{traceID: traceID, spanID: root, name: "dispatch", attrs: map[string]string{"tock.job": "j1"}},
			span{traceID: traceID, spanID: child, parentID: root, name: "invoke"},
		)

		tr := j.WaitForTrace(traceID, func(tr Trace) bool { return len(tr.Spans) == 2 })
		require.Equal(t, traceID, tr.TraceID)
		roots := tr.Roots()
		require.Len(t, roots, 1)
		require.Equal(t, "dispatch", roots[0].OperationName)
		require.Equal(t, "tock-http", tr.Service(roots[0]))
		require.Equal(t, "j1", roots[0].TagString("tock.job"))
		require.Equal(t, "server", roots[0].TagString("span.kind"))
		children := tr.Children(root)
		require.Len(t, children, 1)
		require.Equal(t, "invoke", children[0].OperationName)

		services, err := j.Services(t.Context())
		require.NoError(t, err)
		require.Contains(t, services, "tock-http")

		traces := j.WaitForTraces(TraceQuery{Service: "tock-http"}, nil)
		require.Len(t, traces, 1)
		require.Equal(t, traceID, traces[0].TraceID)
	})

	t.Run("span over OTLP/gRPC", func(t *testing.T) {
		t.Parallel()
		j := Jaeger(t)
		traceID, spanID := randomHex(t, 16), randomHex(t, 8)
		sendGRPC(t, j, "tock-grpc", span{traceID: traceID, spanID: spanID, name: "claim", attrs: map[string]string{"tock.shard": "3"}})

		tr := j.WaitForTrace(traceID, nil)
		require.Len(t, tr.Spans, 1)
		require.Equal(t, "claim", tr.Spans[0].OperationName)
		require.Equal(t, spanID, tr.Spans[0].SpanID)
		require.Equal(t, "tock-grpc", tr.Service(tr.Spans[0]))
		require.Equal(t, "3", tr.Spans[0].TagString("tock.shard"))
	})

	t.Run("find traces by operation and tag", func(t *testing.T) {
		t.Parallel()
		j := Jaeger(t)
		a, b, c := randomHex(t, 16), randomHex(t, 16), randomHex(t, 16)
		sendHTTP(t, j, "tock-find",
			span{traceID: a, spanID: randomHex(t, 8), name: "fire", attrs: map[string]string{"tock.job": "x"}},
			span{traceID: b, spanID: randomHex(t, 8), name: "fire", attrs: map[string]string{"tock.job": "y"}},
			span{traceID: c, spanID: randomHex(t, 8), name: "sweep"},
		)
		all := j.WaitForTraces(TraceQuery{Service: "tock-find"}, func(ts []Trace) bool { return len(ts) == 3 })
		require.Len(t, all, 3)

		fires, err := j.FindTraces(t.Context(), TraceQuery{Service: "tock-find", Operation: "fire"})
		require.NoError(t, err)
		require.ElementsMatch(t, []string{a, b}, traceIDs(fires))

		y, err := j.FindTraces(t.Context(), TraceQuery{Service: "tock-find", Tags: map[string]string{"tock.job": "y"}})
		require.NoError(t, err)
		require.Equal(t, []string{b}, traceIDs(y))

		_, err = j.FindTraces(t.Context(), TraceQuery{})
		require.Error(t, err)
	})

	t.Run("unknown trace and restart", func(t *testing.T) {
		t.Parallel()
		j := Jaeger(t)
		_, err := j.Trace(t.Context(), randomHex(t, 16))
		require.ErrorIs(t, err, ErrTraceNotFound)

		traceID := randomHex(t, 16)
		sendHTTP(t, j, "tock-restart", span{traceID: traceID, spanID: randomHex(t, 8), name: "op"})
		j.WaitForTrace(traceID, nil)

		addrs := []string{j.OTLPGRPCAddr, j.OTLPHTTPAddr, j.QueryURL}
		j.Restart()
		require.True(t, j.Running())
		require.Equal(t, addrs, []string{j.OTLPGRPCAddr, j.OTLPHTTPAddr, j.QueryURL})
		_, err = j.Trace(t.Context(), traceID)
		require.ErrorIs(t, err, ErrTraceNotFound, "storage is in memory")

		j.Stop()
		require.False(t, j.Running())
		_, err = j.Services(t.Context())
		require.Error(t, err)
	})
}

// Consul and Jaeger side by side, as an end-to-end test would have them.
func TestConsulAndJaegerTogether(t *testing.T) {
	t.Parallel()
	consul := Consul(t)
	jaeger := Jaeger(t)
	require.NotEqual(t, consul.HTTPAddr, jaeger.OTLPHTTPAddr)
	traceID := randomHex(t, 16)
	sendGRPC(t, jaeger, "tock-both", span{traceID: traceID, spanID: randomHex(t, 8), name: "op"})
	jaeger.WaitForTrace(traceID, nil)
	consul.Restart()
	require.True(t, consul.Running())
}

func traceIDs(ts []Trace) []string {
	var ids []string
	for _, tr := range ts {
		ids = append(ids, tr.TraceID)
	}
	return ids
}

// rawCodec passes already encoded protobuf messages through gRPC as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }
