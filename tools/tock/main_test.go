package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func TestGlobalFlags(t *testing.T) {
	t.Parallel()

	listAgents := func(h *harness) {
		h.agents.ListAgentsFunc = func(*tockv1.ListAgentsRequest) (*tockv1.ListAgentsResponse, error) {
			return &tockv1.ListAgentsResponse{}, nil
		}
	}

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		listAgents(h)
		require.Equal(t, 0, h.run(t, "agent", "list").code)
		require.Equal(t, ConnConfig{Address: "127.0.0.1:7400", Timeout: 10 * time.Second}, *h.conn)
	})
	t.Run("environment", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		listAgents(h)
		h.env = map[string]string{"TOCK_SERVER": "tock.internal:7400", "TOCK_TOKEN": "s3cret"}
		require.Equal(t, 0, h.run(t, "agent", "list").code)
		require.Equal(t, ConnConfig{Address: "tock.internal:7400", Token: "s3cret", Timeout: 10 * time.Second}, *h.conn)
	})
	t.Run("flags win over the environment", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		listAgents(h)
		h.env = map[string]string{"TOCK_SERVER": "tock.internal:7400", "TOCK_TOKEN": "s3cret"}
		r := h.run(t, "--server", "localhost:9000", "agent", "list", "--token", "other", "--timeout", "3s")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, ConnConfig{Address: "localhost:9000", Token: "other", Timeout: 3 * time.Second}, *h.conn)
	})
	t.Run("the token is not shown in help", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.env = map[string]string{"TOCK_TOKEN": "s3cret"}
		r := h.run(t, "agent", "list", "--help")
		require.Equal(t, 0, r.code)
		require.NotContains(t, r.stdout, "s3cret")
		require.Contains(t, r.stdout, "--token")
	})
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		args []string
		msg  string
		path string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "tock"`, "tock"},
		{[]string{"job", "lst"}, `unknown command "lst" for "tock job"; did you mean "list"?`, "tock job"},
		{[]string{"job", "get"}, "missing NAME", "tock job get"},
		{[]string{"job", "get", "a", "b"}, `unexpected argument "b"`, "tock job get"},
		{[]string{"job", "get", ""}, "NAME must not be empty", "tock job get"},
		{[]string{"exec", "cancel"}, "missing ID", "tock exec cancel"},
		{[]string{"job", "list", "extra"}, `unexpected argument "extra"`, "tock job list"},
		{[]string{"job", "list", "--limit", "-1"}, "invalid --limit -1: must be 0 (no limit) or more", "tock job list"},
		{[]string{"job", "list", "--bogus"}, "unknown flag: --bogus", "tock job list"},
		{[]string{"-o", "yaml", "job", "list"}, `invalid argument "yaml" for "-o, --output" flag: want table or json`, "tock job list"},
		{[]string{"--timeout", "0s", "agent", "list"}, "--timeout must be positive", "tock agent list"},
		{[]string{"--server", "", "agent", "list"}, "--server must not be empty", "tock agent list"},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			t.Parallel()
			h := setup(t)
			r := h.run(t, tc.args...)
			require.Equal(t, exitUsage, r.code, r.stderr)
			require.True(t, strings.HasPrefix(r.stderr, "tock: "+tc.msg), r.stderr)
			require.True(t, strings.HasSuffix(r.stderr, "\nRun '"+tc.path+" --help' for usage.\n"), r.stderr)
			require.Equal(t, 2, strings.Count(r.stderr, "\n"), r.stderr)
			require.Empty(t, r.stdout)
			require.Nil(t, h.conn)
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()

	for _, args := range [][]string{{}, {"--help"}, {"job"}, {"exec", "--help"}, {"help", "agent"}} {
		h := setup(t)
		r := h.run(t, args...)
		require.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
		require.Contains(t, r.stdout, "Usage:")
		require.Empty(t, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()

	h := setup(t)
	r := h.run(t, "version")
	require.Equal(t, 0, r.code)
	require.Equal(t, "tock dev\n", r.stdout)

	r = h.run(t, "version", "-o", "json")
	require.Equal(t, 0, r.code)
	require.JSONEq(t, `{"version": "dev"}`, r.stdout)
	require.Nil(t, h.conn, "version needs no server")
}

func TestZeroMain(t *testing.T) {
	t.Parallel()

	// A Main with no fields set runs without panicking.
	require.Equal(t, exitUsage, (&Main{}).Run(t.Context(), []string{"job", "get"}))
	require.Equal(t, exitOK, (&Main{}).Run(t.Context(), []string{"version"}))
}
