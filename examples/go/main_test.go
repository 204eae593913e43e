package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"github.com/tockhq/tock/sdk-go/worker"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestEcho(t *testing.T) {
	t.Parallel()
	out, err := echo(context.Background(), []byte("same bytes"))
	require.NoError(t, err)
	require.Equal(t, "same bytes", string(out))
}

func TestSleep(t *testing.T) {
	t.Parallel()
	out, err := sleep(context.Background(), []byte(`{"ms": 5}`))
	require.NoError(t, err)
	require.JSONEq(t, `{"slept_ms": 5}`, string(out))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = sleep(ctx, []byte(`{"ms": 60000}`))
	require.ErrorIs(t, err, context.Canceled)

	for _, bad := range []string{`nope`, `{"ms": -1}`, `{"ms": 999999999}`} {
		_, err = sleep(context.Background(), []byte(bad))
		var we *worker.Error
		require.ErrorAs(t, err, &we, bad)
		require.Equal(t, "InvalidInput", we.Kind)
		require.False(t, we.Retryable)
	}
}

func TestFail(t *testing.T) {
	t.Parallel()
	_, err := fail(context.Background(), nil)
	var we *worker.Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, "Deliberate", we.Kind)
	require.Equal(t, "fail handler always fails", we.Message)
	require.True(t, we.Retryable)
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu  sync.Mutex // protects buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServiceServesHandlers(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--listen", "127.0.0.1:0"}, &logs) }()
	defer func() {
		stop()
		require.NoError(t, <-done)
	}()

	addrRE := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	var addr string
	require.Eventually(t, func() bool {
		m := addrRE.FindStringSubmatch(logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, 10*time.Second, 5*time.Millisecond)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := handlerv1.NewHandlerServiceClient(conn)

	list, err := client.ListHandlers(t.Context(), &handlerv1.ListHandlersRequest{})
	require.NoError(t, err)
	var names []string
	for _, h := range list.GetHandlers() {
		names = append(names, h.GetName())
	}
	require.Equal(t, []string{"echo", "fail", "sleep"}, names)

	sctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := client.Execute(sctx)
	require.NoError(t, err)
	start := func(id, handler, payload string) {
		require.NoError(t, stream.Send(&handlerv1.ExecuteRequest{Kind: &handlerv1.ExecuteRequest_Start{Start: &handlerv1.Start{
			ExecutionId: id, Handler: handler, Payload: []byte(payload),
		}}}))
	}
	results := map[string]*handlerv1.Result{}
	waitResult := func(id string) *handlerv1.Result {
		for results[id] == nil {
			m, err := stream.Recv()
			require.NoError(t, err)
			if r := m.GetResult(); r != nil {
				results[r.GetExecutionId()] = r
			}
		}
		return results[id]
	}

	start("e1", "echo", `{"x":1}`)
	start("s1", "sleep", `{"ms": 10}`)
	start("f1", "fail", ``)
	start("s2", "sleep", `{"ms": 600000}`)

	require.JSONEq(t, `{"x":1}`, string(waitResult("e1").GetOutput().GetData()))
	require.JSONEq(t, `{"slept_ms":10}`, string(waitResult("s1").GetOutput().GetData()))
	f := waitResult("f1").GetError()
	require.Equal(t, "Deliberate", f.GetKind())
	require.True(t, f.GetRetryable())

	require.NoError(t, stream.Send(&handlerv1.ExecuteRequest{Kind: &handlerv1.ExecuteRequest_Cancel{
		Cancel: &handlerv1.Cancel{ExecutionId: "s2"},
	}}))
	require.Equal(t, handlerv1.ErrorCause_ERROR_CAUSE_CANCELLED, waitResult("s2").GetError().GetCause())
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	err := run(context.Background(), []string{"--bogus"}, &logs)
	require.True(t, errors.As(err, new(usageError)))
}
