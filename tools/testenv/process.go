package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// readyTimeout bounds a start: from exec until the process answers its readiness probe.
	// Generous, since a loaded two-core CI machine runs many test binaries at once.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds a graceful stop before the process is killed.
	stopTimeout = 15 * time.Second
	// pollInterval is how often readiness is probed.
	pollInterval = 25 * time.Millisecond
	// startAttempts is how many times a first start is tried with fresh ports when a port
	// found free was taken before the process bound it.
	startAttempts = 3
	// logTailLines is how much of a process's log is shown when a start or a test fails.
	logTailLines = 40
)

// errPortTaken means the process could not bind a port it was given.
var errPortTaken = errors.New("a port was taken before the process could bind it")

// process is a child process started for a test and stopped when the test ends. It can be
// stopped and started again with the same arguments, so that it comes back on the same ports.
type process struct {
	t       testing.TB
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	// ready returns nil once the process serves what it is for.
	ready func(ctx context.Context) error

	mu sync.Mutex // guards cmd and exited
	// cmd is the running process, nil while stopped; exited is closed when it has exited.
	cmd    *exec.Cmd
	exited chan struct{}
}

// newProcess returns a process that runs bin with args, logging to name.log in dir.
func newProcess(t testing.TB, name, bin, dir string, args []string, ready func(context.Context) error) *process {
	return &process{
		t:       t,
		name:    name,
		bin:     bin,
		args:    args,
		env:     childEnv(),
		logPath: filepath.Join(dir, name+".log"),
		ready:   ready,
	}
}

// childEnv is this process's environment without the variables that would change how Consul
// or Jaeger run (a test may have set them for the code under test).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CONSUL_") || strings.HasPrefix(kv, "OTEL_") || strings.HasPrefix(kv, "JAEGER_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// start runs the process and waits until it is ready. It returns errPortTaken (wrapped) when the
// process exited because a port was in use.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.name)
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	offset, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "=== testenv: %s %s\n", p.bin, strings.Join(p.args, " "))

	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Dir = filepath.Dir(p.logPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited

	if err := p.waitReady(exited); err != nil {
		p.killLocked()
		log := p.logSince(offset)
		if bytes.Contains(log, []byte("address already in use")) {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("%s: %w; its log:\n%s", p.name, err, tail(log, logTailLines))
	}
	return nil
}

// waitReady polls the readiness probe until it passes, the process exits, or readyTimeout
// passes.
func (p *process) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		err := p.ready(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited while starting")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", readyTimeout, err)
		case <-tick.C:
		}
	}
}

// stop ends the process: gracefully (SIGINT, then SIGKILL after stopTimeout) or at once
// (SIGKILL). It does nothing when the process is not running.
func (p *process) stop(graceful bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	if !graceful {
		p.killLocked()
		return nil
	}
	var err error
	if sigErr := p.cmd.Process.Signal(os.Interrupt); sigErr == nil {
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-p.exited:
		case <-timer.C:
			err = fmt.Errorf("%s did not stop within %s of SIGINT; killed it", p.name, stopTimeout)
		}
	}
	p.killLocked()
	return err
}

// killLocked kills the process, waits for it to exit and marks it stopped. p.mu is held.
func (p *process) killLocked() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill() // fails only when it already exited
	<-p.exited
	p.cmd, p.exited = nil, nil
}

// running reports whether the process was started and has neither been stopped nor exited.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// logSince returns the log from byte offset on.
func (p *process) logSince(offset int64) []byte {
	b, err := os.ReadFile(p.logPath)
	if err != nil || offset > int64(len(b)) {
		return nil
	}
	return b[offset:]
}

// logTail returns the last n lines of the whole log.
func (p *process) logTail(n int) string {
	return tail(p.logSince(0), n)
}

// cleanup stops the process when the test ends and, when the test failed, shows the end of
// the log.
func (p *process) cleanup() {
	if err := p.stop(true); err != nil {
		p.t.Errorf("testenv: %v", err)
	}
	if p.t.Failed() {
		p.t.Logf("testenv: last lines of the %s log (%s):\n%s", p.name, p.logPath, p.logTail(logTailLines))
	}
}

// freePorts returns n distinct loopback ports nobody listened on a moment ago, free for both
// TCP and UDP (Serf gossips over both on one port).
func freePorts(n int) ([]int, error) {
	var (
		ports     []int
		listeners []io.Closer
	)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken for UDP; keep the TCP listener so the port is not offered again
		}
		listeners = append(listeners, u)
		ports = append(ports, port)
	}
	return ports, nil
}

// loopback returns "127.0.0.1:port".
func loopback(port int) string {
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// newHTTPClient returns a client with a transport of its own, so that its idle connections can
// be closed when the test ends (goleak would see their goroutines otherwise).
func newHTTPClient(t testing.TB) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
