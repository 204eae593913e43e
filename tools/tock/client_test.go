package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// closedAddress returns a loopback address where nothing listens.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestBearerToken(t *testing.T) {
	t.Parallel()

	md, err := bearerToken{token: "s3cret"}.GetRequestMetadata(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]string{"authorization": "Bearer s3cret"}, md)
	require.False(t, bearerToken{}.RequireTransportSecurity())
	require.True(t, bearerToken{requireTLS: true}.RequireTransportSecurity())
}

func TestTimeoutInterceptor(t *testing.T) {
	t.Parallel()

	var deadline time.Time
	invoker := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		deadline, _ = ctx.Deadline()
		return nil
	}
	before := time.Now()
	require.NoError(t, timeoutInterceptor(5*time.Second)(t.Context(), "/m", nil, nil, nil, invoker))
	require.WithinRange(t, deadline, before.Add(5*time.Second), time.Now().Add(5*time.Second))

	deadline = time.Time{}
	require.NoError(t, timeoutInterceptor(0)(context.Background(), "/m", nil, nil, nil, invoker))
	require.True(t, deadline.IsZero(), "no timeout means no deadline")
}

func TestDialUnreachable(t *testing.T) {
	t.Parallel()

	addr := closedAddress(t)
	c, err := Dial(ConnConfig{Address: addr, Token: "s3cret", Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })

	_, err = c.Jobs.ListJobs(t.Context(), &tockv1.ListJobsRequest{})
	var unreachable *UnreachableError
	require.ErrorAs(t, err, &unreachable)
	require.Equal(t, addr, unreachable.Address)
}

func TestRunUnreachable(t *testing.T) {
	t.Parallel()

	addr := closedAddress(t)
	var stdout, stderr bytes.Buffer
	code := NewMain(strings.NewReader(""), &stdout, &stderr).Run(t.Context(), []string{"--server", addr, "job", "list"})
	require.Equal(t, exitError, code)
	require.Empty(t, stdout.String())
	require.Contains(t, stderr.String(), "tock: unavailable: cannot reach the control plane at "+addr+":")
	require.Contains(t, stderr.String(), "`make run`")
	require.Contains(t, stderr.String(), "--server")
}
