package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The environment variables testenv reads.
const (
	// ConsulBinEnv names the consul binary to run.
	ConsulBinEnv = "TOCK_CONSUL_BIN"
	// JaegerBinEnv names the jaeger binary to run.
	JaegerBinEnv = "TOCK_JAEGER_BIN"
	// RequireEnv, when set to a non-empty value, turns a missing binary from a skip into a
	// failure: CI sets it so that tests meant to run against real Consul and Jaeger cannot pass
	// by skipping.
	RequireEnv = "TOCK_TESTENV_REQUIRE"
)

// rootModule is the module path of the repository's root go.mod.
const rootModule = "github.com/tockhq/tock"

// errNotFound means a binary is in none of the places looked in.
var errNotFound = errors.New("not found")

// tool describes a binary testenv runs.
type tool struct {
	name   string // file name: consul, jaeger
	env    string // environment variable naming it
	target string // make target that builds it
}

var (
	consulTool = tool{name: "consul", env: ConsulBinEnv, target: ".bin/consul"}
	jaegerTool = tool{name: "jaeger", env: JaegerBinEnv, target: ".bin/jaeger"}
)

// need returns the path of the tool's binary. It skips t (fails it when TOCK_TESTENV_REQUIRE is
// set) when the binary is nowhere to be found, and fails t when the environment variable names
// a file that cannot be run.
func (tl tool) need(t testing.TB) string {
	t.Helper()
	path, err := tl.find()
	switch {
	case errors.Is(err, errNotFound):
		msg := fmt.Sprintf("no %s binary: set %s, or build %s with `make %s`, or put %s on PATH",
			tl.name, tl.env, tl.target, tl.target, tl.name)
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("testenv: %s (%s is set, so this is a failure, not a skip)", msg, RequireEnv)
		}
		t.Skip(msg)
	case err != nil:
		t.Fatalf("testenv: %v", err)
	}
	return path
}

// find looks for the binary in the environment variable, in <repo>/.bin, then on PATH.
func (tl tool) find() (string, error) {
	if p := os.Getenv(tl.env); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", tl.env, p, err)
		}
		return p, nil
	}
	if root, err := RepoRoot(); err == nil {
		p := filepath.Join(root, ".bin", tl.name)
		if executable(p) == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(tl.name); err == nil {
		return p, nil
	}
	return "", errNotFound
}

// executable returns nil when path is a regular file someone may execute.
func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not executable")
	}
	return nil
}

// RepoRoot returns the folder of the go.mod whose module is github.com/tockhq/tock, found by
// walking up from the working directory (a test's working directory is its package's folder).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if modulePath(filepath.Join(dir, "go.mod")) == rootModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s above the working directory", rootModule)
		}
		dir = parent
	}
}

// modulePath returns the module path a go.mod declares, "" when the file is missing or has none.
func modulePath(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			rest, _, _ = strings.Cut(rest, "//")
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}
