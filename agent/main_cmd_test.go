package agent_test

import (
	"bytes"
	"context"
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/agent"
)

func TestMainRejectsBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--weight", "0"}, "--weight 0: must be at least 1"},
		{[]string{"--capacity", "-3"}, "--capacity -3"},
		{[]string{"--discovery", "consul"}, `--discovery "consul" is not supported`},
		{[]string{"--labels", "zone"}, "--labels"},
		{[]string{"--labels", "a=1,a=2"}, `label "a" given twice`},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--listen", "nowhere"}, "--listen"},
		{[]string{"--app-addr", "unix://"}, "empty unix socket path"},
		{[]string{"--register-ttl", "100ms"}, "--register-ttl"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
		{[]string{"extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		m := &agent.Main{Stderr: &stderr, Getenv: func(string) string { return "" }}
		err := m.Run(context.Background(), tt.args)
		require.ErrorContains(t, err, tt.want, "args %v", tt.args)
		require.Equal(t, agent.ExitUsage, agent.ExitCode(err), "args %v", tt.args)
	}
}

func TestMainHelp(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := (&agent.Main{Stderr: &stderr}).Run(context.Background(), []string{"-help"})
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Equal(t, agent.ExitOK, agent.ExitCode(err))
	require.Contains(t, stderr.String(), "-app-addr")
}

func TestMainRunsAndStops(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stop at once: the agent starts, drains nothing and stops
	m := &agent.Main{Stderr: &stderr, Getenv: func(string) string { return "" }}
	err := m.Run(ctx, []string{
		"--listen", "127.0.0.1:0", "--app-addr", "127.0.0.1:1", "--register", "",
		"--labels", "zone=eu-1,tier=gold", "--log-format", "json", "--id", "cli-agent",
	})
	require.NoError(t, err)
	require.Equal(t, agent.ExitOK, agent.ExitCode(err))
	require.Contains(t, stderr.String(), `"agent_id":"cli-agent"`)
}
