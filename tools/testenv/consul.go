package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
)

// ConsulNodeName is the node name of every agent testenv starts.
const ConsulNodeName = "tock-testenv"

// ConsulConfig configures StartConsul.
type ConsulConfig struct {
	// Persistent runs the agent as a single server with a data directory (under t.TempDir)
	// instead of in -dev mode, so that the catalog, the KV store and the services registered
	// through the agent survive Restart, as they do when a real agent restarts. Such an agent
	// takes a second or two more to start, since it elects itself leader through Raft.
	// Default false: a -dev agent, which keeps everything in memory and comes back empty.
	Persistent bool
	// Args are extra arguments for `consul agent`, after testenv's own: for example
	// []string{"-hcl", `acl { enabled = true }`}. Default none.
	Args []string
}

// ConsulAgent is a real Consul agent running as a child process, serving its HTTP API on a
// loopback port. Its addresses stay the same across Stop and Restart.
//
// Stop, Kill and Restart fail the test on error, so call them from the test's goroutine.
type ConsulAgent struct {
	// HTTPAddr is the HTTP API's host:port (what CONSUL_HTTP_ADDR and the api package's
	// Config.Address take).
	HTTPAddr string
	// URL is HTTPAddr as an http:// URL.
	URL string
	// ServerAddr is the server RPC host:port (Raft and RPC between servers).
	ServerAddr string
	// Datacenter is the agent's datacenter, dc1.
	Datacenter string
	// Dir holds the agent's log (consul.log) and, when persistent, its data.
	Dir string

	t      testing.TB
	proc   *process
	client *http.Client
}

// Consul starts a Consul agent in -dev mode for t on free loopback ports, waits until it has a
// leader and has registered its own node, and stops it when t ends. It skips t when there is
// no consul binary (see the package documentation).
func Consul(t testing.TB) *ConsulAgent {
	t.Helper()
	return StartConsul(t, ConsulConfig{})
}

// StartConsul is Consul with a configuration.
func StartConsul(t testing.TB, cfg ConsulConfig) *ConsulAgent {
	t.Helper()
	bin := consulTool.need(t)
	a := &ConsulAgent{Datacenter: "dc1", Dir: t.TempDir(), t: t, client: newHTTPClient(t)}

	var errs []error
	for range startAttempts {
		ports, err := freePorts(3)
		if err != nil {
			t.Fatalf("testenv: consul ports: %v", err)
		}
		httpPort, serverPort, serfPort := ports[0], ports[1], ports[2]
		a.HTTPAddr = loopback(httpPort)
		a.URL = "http://" + a.HTTPAddr
		a.ServerAddr = loopback(serverPort)
		a.proc = newProcess(t, "consul", bin, a.Dir, a.args(cfg, httpPort, serverPort, serfPort), a.ready)
		err = a.proc.start()
		if err == nil {
			t.Cleanup(a.proc.cleanup)
			return a
		}
		errs = append(errs, err)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("testenv: %v", errors.Join(errs...))
	return nil
}

// args returns the command line of `consul agent`.
func (a *ConsulAgent) args(cfg ConsulConfig, httpPort, serverPort, serfPort int) []string {
	args := []string{"agent"}
	if cfg.Persistent {
		args = append(args,
			"-server", "-bootstrap-expect=1",
			"-data-dir="+filepath.Join(a.Dir, "data"),
			"-hcl=performance { raft_multiplier = 1 }",
		)
	} else {
		args = append(args, "-dev")
	}
	args = append(args,
		"-node="+ConsulNodeName,
		"-datacenter="+a.Datacenter,
		"-bind=127.0.0.1",
		"-client=127.0.0.1",
		"-advertise=127.0.0.1",
		"-http-port="+strconv.Itoa(httpPort),
		"-server-port="+strconv.Itoa(serverPort),
		"-serf-lan-port="+strconv.Itoa(serfPort),
		// Nothing else listens: no WAN gossip, DNS, HTTPS or gRPC (xDS for Envoy).
		"-serf-wan-port=-1",
		"-dns-port=-1",
		"-https-port=-1",
		"-grpc-port=-1",
		"-grpc-tls-port=-1",
		"-hcl=disable_update_check = true",
		// Many agents and watchers on one loopback address; the default allows 200.
		"-hcl=limits { http_max_conns_per_client = 4096 }",
	)
	return append(args, cfg.Args...)
}

// ready returns nil once the agent has a leader and has synced its own node to the catalog
// (the leader puts the node there first, without its metadata; the agent's first
// anti-entropy sync completes it), so that what a test reads matches the agent's
// configuration and registrations through the agent are synced at once.
func (a *ConsulAgent) ready(ctx context.Context) error {
	var leader string
	if err := a.get(ctx, "/v1/status/leader", &leader); err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	var self struct{ Meta map[string]string }
	if err := a.get(ctx, "/v1/agent/self", &self); err != nil {
		return err
	}
	var node *struct {
		Node struct{ Meta map[string]string }
	}
	if err := a.get(ctx, "/v1/catalog/node/"+ConsulNodeName, &node); err != nil {
		return err
	}
	if node == nil {
		return errors.New("own node not in the catalog yet")
	}
	for k, v := range self.Meta {
		if got, ok := node.Node.Meta[k]; !ok || got != v {
			return errors.New("own node not synced to the catalog yet")
		}
	}
	return nil
}

// get fetches path from the HTTP API and decodes the JSON answer into v.
func (a *ConsulAgent) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// Stop stops the agent gracefully (SIGINT, then SIGKILL after 15 seconds). Stopping a stopped
// agent does nothing. Until Restart, requests to HTTPAddr are refused.
func (a *ConsulAgent) Stop() {
	a.t.Helper()
	if err := a.proc.stop(true); err != nil {
		a.t.Fatalf("testenv: %v", err)
	}
}

// Kill kills the agent (SIGKILL), as a crash would. Killing a stopped agent does nothing.
func (a *ConsulAgent) Kill() {
	a.t.Helper()
	if err := a.proc.stop(false); err != nil {
		a.t.Fatalf("testenv: %v", err)
	}
}

// Restart stops the agent if it is running, starts it again on the same ports and waits until
// it is ready. A -dev agent comes back empty; a persistent one with its data. It fails the test
// when the agent cannot start, for example when another process took one of its ports meanwhile.
func (a *ConsulAgent) Restart() {
	a.t.Helper()
	a.Stop()
	if err := a.proc.start(); err != nil {
		a.t.Fatalf("testenv: restart: %v", err)
	}
}

// Running reports whether the agent process is running: started and not stopped, killed or
// exited.
func (a *ConsulAgent) Running() bool {
	return a.proc.running()
}

// LogTail returns the last n lines of the agent's log, across restarts.
func (a *ConsulAgent) LogTail(n int) string {
	return a.proc.logTail(n)
}
