package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestFormatError(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			"not found",
			status.Error(codes.NotFound, `job "nightly" not found`),
			`tock: not found: job "nightly" not found`,
		},
		{
			"wrapped status keeps only the server's message",
			fmt.Errorf("get job %q: %w", "x", status.Error(codes.InvalidArgument, "name must be a DNS label")),
			"tock: invalid argument: name must be a DNS label",
		},
		{
			"already exists",
			status.Error(codes.AlreadyExists, `job "x" already exists`),
			`tock: already exists: job "x" already exists`,
		},
		{
			"deadline",
			status.Error(codes.DeadlineExceeded, "context deadline exceeded"),
			"tock: deadline exceeded: context deadline exceeded",
		},
		{
			"unauthenticated without message",
			status.Error(codes.Unauthenticated, ""),
			"tock: unauthenticated",
		},
		{
			"failed precondition",
			status.Error(codes.FailedPrecondition, "execution already finished"),
			"tock: failed precondition: execution already finished",
		},
		{
			"unknown code",
			status.Error(codes.Code(99), "odd"),
			"tock: code 99: odd",
		},
		{
			"control characters in the message",
			status.Error(codes.Internal, "bad\x1b[2Jthing\nhappened"),
			"tock: internal error: bad[2Jthing happened",
		},
		{
			"not a gRPC server",
			status.Error(codes.Unimplemented, "unexpected HTTP status code received from server: 404 (Not Found)"),
			"tock: unimplemented: unexpected HTTP status code received from server: 404 (Not Found)\n" +
				"Is --server the control plane's gRPC address (not its HTTP one)?",
		},
		{
			"plain error",
			fmt.Errorf("read job file: %w", errors.New("open job.json: no such file or directory")),
			"tock: read job file: open job.json: no such file or directory",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, formatError(tc.err))
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		err := fmt.Errorf("list jobs: %w", &UnreachableError{
			Address: "10.1.2.3:7400",
			Err:     status.Error(codes.Unavailable, "connection error: connection refused"),
		})
		got := formatError(err)
		require.Equal(t, "tock: unavailable: cannot reach the control plane at 10.1.2.3:7400: connection error: connection refused\n"+
			"Is tockd running there? Start one with `make run`, or point --server (or TOCK_SERVER) at a running control plane.", got)
	})
}

func TestCodeInWords(t *testing.T) {
	t.Parallel()
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		require.NotContains(t, codeInWords(c), "code ", "code %v has words", c)
	}
	require.Equal(t, "permission denied", codeInWords(codes.PermissionDenied))
	require.Equal(t, "resource exhausted", codeInWords(codes.ResourceExhausted))
}
