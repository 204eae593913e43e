package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
)

// binDir holds the binaries built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func buildAndRun(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "tock-e2e-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	binDir = dir
	for name, pkg := range map[string]string{
		"tockd":      "github.com/tockhq/tock/controlplane/cmd/tockd",
		"tock-agent": "github.com/tockhq/tock/agent/cmd/tock-agent",
		"tock":       "github.com/tockhq/tock/tools/tock",
		"example-go": "github.com/tockhq/tock/examples/go",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("build %s: %w", name, err)
		}
	}
	// pgtest.Main stops the PostgreSQL server the tests may have started.
	return pgtest.Main(m).Run(), nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// freeAddrs returns n distinct loopback addresses with ports that were free a moment ago:
// the listeners are held until all n are found, so no two are the same.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer lis.Close()
		addrs[i] = lis.Addr().String()
	}
	return addrs
}

// proc is a running binary whose output goes to a log file in the test's directory.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startNamedProc(t, name, name, args...)
}

// startNamedProc is startProc for one of several processes of one binary: name tells them
// apart in logs.
func startNamedProc(t *testing.T, name, binary string, args ...string) *proc {
	t.Helper()
	return startNamedProcEnv(t, name, binary, nil, args...)
}

// startNamedProcEnv is startNamedProc with more environment variables ("KEY=value").
func startNamedProcEnv(t *testing.T, name, binary string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(filepath.Join(binDir, binary), args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.dumpLog()
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s did not stop within 30s of SIGTERM", p.name)
		p.kill()
	}
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) dumpLog() {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	p.t.Logf("last lines of %s log:\n%s", p.name, strings.Join(lines, "\n"))
}

// cluster is a tockd dev with the Go example service next to it.
type cluster struct {
	t        *testing.T
	dataDir  string
	grpcAddr string
	httpAddr string
	appAddr  string
	tockd    *proc
	app      *proc
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{
		t:        t,
		dataDir:  t.TempDir(),
		grpcAddr: freeAddr(t),
		httpAddr: freeAddr(t),
		appAddr:  freeAddr(t),
	}
	c.app = startProc(t, "example-go", "--listen", c.appAddr)
	c.startTockd()
	return c
}

func (c *cluster) startTockd() {
	c.t.Helper()
	c.tockd = startProc(c.t, "tockd", "dev",
		"--data-dir", c.dataDir, "--grpc-addr", c.grpcAddr, "--http-addr", c.httpAddr,
		"--app-addr", c.appAddr, "--shutdown-timeout", "10s")
	c.eventually(30*time.Second, "tockd answers /healthz", func() bool {
		resp, err := http.Get("http://" + c.httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// eventually polls cond until it holds or the timeout passes.
func (c *cluster) eventually(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// call sends a REST request and decodes the JSON answer into out (when not nil). It returns
// the status code and the raw body.
func (c *cluster) call(method, path string, body any, out any) (int, string) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(c.t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, "http://"+c.httpAddr+path, r)
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(c.t, json.Unmarshal(raw, out), "decode %s", raw)
	}
	return resp.StatusCode, string(raw)
}

// cli runs the tock CLI against the cluster and returns its standard output.
func (c *cluster) cli(args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "tock"), append([]string{"--server", c.grpcAddr}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("tock %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

type execution struct {
	ID          string          `json:"id"`
	Job         string          `json:"job"`
	State       string          `json:"state"`
	Attempt     int             `json:"attempt"`
	Agent       string          `json:"agent"`
	NominalTime time.Time       `json:"nominalTime"`
	Result      json.RawMessage `json:"result"`
	RetryOf     string          `json:"retryOf"`
	CreateTime  time.Time       `json:"createTime"`
	StartTime   *time.Time      `json:"startTime"`
	FinishTime  *time.Time      `json:"finishTime"`
	LeaseEpoch  int64           `json:"leaseEpoch,string"`
	Progress    *struct {
		Fraction   float64    `json:"fraction"`
		Message    string     `json:"message"`
		UpdateTime *time.Time `json:"updateTime"`
	} `json:"progress"`
	Error *struct {
		Message   string `json:"message"`
		Kind      string `json:"kind"`
		Retryable bool   `json:"retryable"`
	} `json:"error"`
}

func (c *cluster) executions(job string) []execution {
	c.t.Helper()
	var out struct {
		Executions []execution `json:"executions"`
	}
	code, body := c.call(http.MethodGet, "/v1/executions?job="+job+"&pageSize=1000", nil, &out)
	require.Equal(c.t, http.StatusOK, code, body)
	return out.Executions
}

func countState(execs []execution, state string) int {
	n := 0
	for _, e := range execs {
		if strings.HasSuffix(e.State, state) {
			n++
		}
	}
	return n
}
