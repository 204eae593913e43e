package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestModulePath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, gomod, want string
	}{
		{"plain", "module github.com/tockhq/tock\n\ngo 1.26.8\n", "github.com/tockhq/tock"},
		{"quoted with comment", "// header\nmodule \"github.com/tockhq/tock\" // root\n", "github.com/tockhq/tock"},
		{"sub-module", "module github.com/tockhq/tock/tools/consul\n", "github.com/tockhq/tock/tools/consul"},
		{"modules word is not module", "modules x\n", ""},
		{"none", "go 1.26\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "go.mod")
			require.NoError(t, os.WriteFile(path, []byte(tc.gomod), 0o644))
			require.Equal(t, tc.want, modulePath(path))
		})
	}
	require.Empty(t, modulePath(filepath.Join(t.TempDir(), "missing")))
}

func TestRepoRoot(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	require.NoError(t, err)
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "tools", "testenv"), wd)
	require.Equal(t, rootModule, modulePath(filepath.Join(root, "go.mod")))
}

// The tests that set environment variables cannot run in parallel.

func TestFindFromEnv(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "consul")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755))
	t.Setenv(ConsulBinEnv, bin)
	got, err := consulTool.find()
	require.NoError(t, err)
	require.Equal(t, bin, got)

	// A variable naming something that cannot run is an error, not a reason to skip.
	notExec := filepath.Join(t.TempDir(), "consul")
	require.NoError(t, os.WriteFile(notExec, nil, 0o644))
	t.Setenv(ConsulBinEnv, notExec)
	_, err = consulTool.find()
	require.ErrorContains(t, err, "not executable")
	require.False(t, errors.Is(err, errNotFound))

	t.Setenv(ConsulBinEnv, filepath.Join(t.TempDir(), "missing"))
	_, err = consulTool.find()
	require.Error(t, err)
	require.False(t, errors.Is(err, errNotFound))
}

func TestFindNowhere(t *testing.T) {
	t.Setenv(JaegerBinEnv, "")
	t.Setenv("PATH", t.TempDir())
	t.Chdir(t.TempDir()) // no repository above, so no .bin
	_, err := jaegerTool.find()
	require.ErrorIs(t, err, errNotFound)
}

func TestFreePorts(t *testing.T) {
	t.Parallel()
	ports, err := freePorts(5)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, p := range ports {
		require.NotZero(t, p)
		require.False(t, seen[p], "port %d twice", p)
		seen[p] = true
	}
}

// traceJSON is a trace as Jaeger v2's query API returned it for two OTLP spans, a server span
// with a child, trimmed.
const traceJSON = `{
  "traceID": "0af7651916cd43dd8448eb211c80319c",
  "spans": [
    {"traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "00000000000000c2", "operationName": "child",
     "references": [{"refType": "CHILD_OF", "traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "b7ad6b7169203331"}],
     "startTime": 1795217893039950, "duration": 20,
     "tags": [{"key": "tock.attempt", "type": "int64", "value": 9007199254740993}],
     "logs": [{"timestamp": 1795217893039960, "fields": [{"key": "event", "type": "string", "value": "retry"}]}],
     "processID": "p1", "warnings": null},
    {"traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "b7ad6b7169203331", "operationName": "probe-op",
     "references": [], "startTime": 1795217893039905, "duration": 1000,
     "tags": [{"key": "span.kind", "type": "string", "value": "server"}, {"key": "tock.job", "type": "string", "value": "j1"}],
     "logs": [], "processID": "p1", "warnings": null}
  ],
  "processes": {"p1": {"serviceName": "tock-probe", "tags": []}},
  "warnings": null
}`

func TestTraceModel(t *testing.T) {
	t.Parallel()
	var tr Trace
	dec := json.NewDecoder(strings.NewReader(traceJSON))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&tr))

	roots := tr.Roots()
	require.Len(t, roots, 1)
	root := roots[0]
	require.Equal(t, "probe-op", root.OperationName)
	require.Empty(t, root.ParentSpanID())
	require.Equal(t, "tock-probe", tr.Service(root))
	require.Equal(t, "server", root.TagString("span.kind"))
	require.Equal(t, "j1", root.TagString("tock.job"))
	require.Empty(t, root.TagString("absent"))
	require.Equal(t, int64(1000), root.Duration().Microseconds())
	require.Equal(t, int64(1795217893039905), root.Start().UnixMicro())

	children := tr.Children(root.SpanID)
	require.Len(t, children, 1)
	child := children[0]
	require.Equal(t, root.SpanID, child.ParentSpanID())
	require.Equal(t, "9007199254740993", child.TagString("tock.attempt"), "int64 tags keep every digit")
	require.Equal(t, []string{"retry"}, child.Events())
	require.Len(t, tr.SpansNamed("child"), 1)
	_, ok := tr.SpanByID("00000000000000c2")
	require.True(t, ok)

	require.Equal(t, "trace 0af7651916cd43dd8448eb211c80319c (2 spans)\n"+
		"  tock-probe probe-op [b7ad6b7169203331] 1ms\n"+
		"    tock-probe child [00000000000000c2] 20µs\n", tr.String())
}

// randomHex returns n random bytes as hex: trace ids (16) and span ids (8).
func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
