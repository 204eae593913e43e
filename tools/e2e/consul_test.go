package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
	"github.com/tockhq/tock/tools/testenv"
)

// TestConsulDiscovery runs two replicas on one PostgreSQL and three agents, which find each
// other only through a real Consul agent: the agents register there (tock-agent --discovery
// consul), and so do the replicas, which watch both services. Jobs fire every second
// throughout. One agent is paused (SIGSTOP): its checks turn critical, the replicas drop it
// and assign it nothing more; resumed, it is taken back. Then Consul restarts and comes back
// empty: the replicas keep their agents and keep dispatching while everything registers
// again. Every fire's execution chain succeeds.
func TestConsulDiscovery(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs for about 45 seconds; skipped with -short")
	}
	started := time.Now()
	consul := testenv.Consul(t)
	client, err := api.NewClient(&api.Config{Address: consul.HTTPAddr, Transport: &http.Transport{}})
	require.NoError(t, err)
	env := []string{"CONSUL_HTTP_ADDR=" + consul.HTTPAddr}
	db := pgtest.NewDatabase(t)
	out, err := exec.Command(filepath.Join(binDir, "tockd"), "migrate", "--store", db).CombinedOutput()
	require.NoError(t, err, "tockd migrate: %s", out)

	const replicaCount, agentCount = 2, 3
	addrs := freeAddrs(t, 2*replicaCount+2*agentCount)
	replicas := make([]*cluster, replicaCount)
	ids := make([]string, replicaCount)
	for i := range replicas {
		ids[i] = fmt.Sprintf("replica-%d", i)
		replicas[i] = &cluster{t: t, grpcAddr: addrs[2*i], httpAddr: addrs[2*i+1]}
		replicas[i].tockd = startNamedProcEnv(t, ids[i], "tockd", env,
			"--store", db, "--discovery", "consul", "--replica-id", ids[i],
			"--grpc-addr", replicas[i].grpcAddr, "--http-addr", replicas[i].httpAddr,
			"--replica-ttl", "3s", "--lease", "6s", "--log-level", "warn")
	}
	api0 := replicas[0]
	for _, r := range replicas {
		r.eventually(30*time.Second, "tockd answers /healthz", func() bool {
			return r.send(http.MethodGet, "/healthz", nil, nil) == nil
		})
	}
	agents := make([]string, agentCount)
	procs := map[string]*proc{}
	for i := range agents {
		agents[i] = fmt.Sprintf("agent-%d", i)
		appAddr, agentAddr := addrs[2*replicaCount+2*i], addrs[2*replicaCount+2*i+1]
		startNamedProc(t, "example-go-"+agents[i], "example-go", "--listen", appAddr)
		procs[agents[i]] = startNamedProcEnv(t, agents[i], "tock-agent", env,
			"--discovery", "consul", "--id", agents[i], "--listen", agentAddr, "--app-addr", appAddr,
			"--capacity", "16", "--register-ttl", "3s", "--log-level", "warn")
	}

	// ownedSum is how many agents the replicas hold sessions with, all together.
	ownedSum := func() (float64, error) {
		sum := 0.0
		for _, r := range replicas {
			resp, err := http.Get("http://" + r.httpAddr + "/metrics")
			if err != nil {
				return 0, err
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return 0, err
			}
			sum += promSum(string(b), "tock_agents_owned")
		}
		return sum, nil
	}
	owned := func() float64 {
		n, err := ownedSum()
		if err != nil {
			return -1
		}
		return n
	}

	// Everything finds everything through Consul: each agent is held by the replica
	// rendezvous hashing chooses, and both replicas list the agents.
	api0.eventually(60*time.Second, "the replicas hold the agents they own", func() bool {
		return ownedAsHashed(api0.agentOwners(), agents, ids) && ownedAsHashed(replicas[1].agentOwners(), agents, ids) && owned() == agentCount
	})
	found := time.Since(started)
	passing := func(service string) int {
		entries, _, err := client.Health().Service(service, "", true, nil)
		if err != nil {
			return -1
		}
		return len(entries)
	}
	require.Equal(t, replicaCount, passing("tock-replica"))

	// Six jobs fire every second throughout.
	jobs := make([]string, 6)
	for i := range jobs {
		jobs[i] = fmt.Sprintf("tick-%d", i)
	}
	parallel(t, jobs, func(i int, name string) error {
		return replicas[i%replicaCount].send(http.MethodPost, "/v1/jobs", map[string]any{
			"name": name, "handler": "echo", "schedule": map[string]any{"cron": "* * * * * *"},
			"timeout": "10s", "retryPolicy": map[string]any{"maxAttempts": 5, "initialBackoff": "0.1s"},
		}, nil)
	})
	ranOn := func(since time.Time) map[string]int {
		out := map[string]int{}
		for _, e := range api0.allExecutions() {
			if strings.HasSuffix(e.State, "SUCCEEDED") && !e.CreateTime.Before(since) {
				out[e.Agent]++
			}
		}
		return out
	}
	api0.eventually(30*time.Second, "every agent runs executions", func() bool { return len(ranOn(started)) == agentCount })

	// Pause agent-2: its session TTL check and its gRPC check turn critical, and the
	// replicas drop it.
	victim := "agent-2"
	require.NoError(t, procs[victim].cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			_ = procs[victim].cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	var criticalAt time.Time
	api0.eventually(30*time.Second, "the paused agent's checks are critical", func() bool {
		checks, _, err := client.Health().Checks("tock-agent", nil)
		if err != nil {
			return false
		}
		critical := 0
		for _, c := range checks {
			if c.ServiceID == "tock-agent-"+victim && c.Status == api.HealthCritical {
				critical++
			}
		}
		return critical == 2
	})
	criticalAt = time.Now()
	api0.eventually(15*time.Second, "the replicas drop the paused agent", func() bool {
		_, listed := api0.agentOwners()[victim]
		return owned() == agentCount-1 && !listed
	})
	dropped := time.Now()
	wait(t, dropped.Add(3*time.Second)) // jobs keep firing meanwhile
	for _, e := range api0.allExecutions() {
		if !e.CreateTime.Before(criticalAt) {
			require.NotEqual(t, victim, e.Agent, "execution %s, created after the agent's checks turned critical, was assigned to it", e.ID)
		}
	}
	require.NoError(t, procs[victim].cmd.Process.Signal(syscall.SIGCONT))
	resumed = true
	resumedAt := time.Now()
	api0.eventually(30*time.Second, "the resumed agent is taken back and runs executions", func() bool {
		return owned() == agentCount && ranOn(resumedAt)[victim] > 0
	})
	takenBack := time.Since(resumedAt)

	// Restart Consul, which comes back empty. The replicas' view of their agents is
	// sampled throughout, until everything has registered again and a while after.
	var (
		mu        sync.Mutex
		minOwned  = float64(agentCount)
		samples   int
		stop      = make(chan struct{})
		sampled   = make(chan struct{})
		scrapeErr int
	)
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			n, err := ownedSum()
			mu.Lock()
			if err != nil {
				scrapeErr++
			} else {
				minOwned = min(minOwned, n)
				samples++
			}
			mu.Unlock()
		}
	}()
	restartAt := time.Now()
	consul.Restart()
	restarted := time.Since(restartAt)
	api0.eventually(60*time.Second, "the agents and replicas are registered again", func() bool {
		return passing("tock-replica") == replicaCount && passing("tock-agent") == agentCount
	})
	reRegistered := time.Since(restartAt)
	after := time.Now()
	api0.eventually(30*time.Second, "every agent runs executions after the restart", func() bool {
		return len(ranOn(after)) == agentCount
	})
	wait(t, after.Add(5*time.Second))
	close(stop)
	<-sampled
	require.Equal(t, float64(agentCount), minOwned, "the replicas dropped agents while Consul restarted")
	require.Zero(t, scrapeErr)
	require.True(t, ownedAsHashed(api0.agentOwners(), agents, ids), "ownership as before")

	// Stop firing; every fire's chain of executions succeeds.
	parallel(t, jobs, func(_ int, name string) error {
		return api0.send(http.MethodPost, "/v1/jobs/"+name+":pause", map[string]any{}, nil)
	})
	var execs []execution
	api0.eventually(40*time.Second, "every execution has ended", func() bool {
		execs = api0.allExecutions()
		for _, e := range execs {
			if !finalState(e.State) {
				return false
			}
		}
		return true
	})
	lost := requireNoneLost(t, execs)
	t.Logf("found through Consul in %s; paused %s: checks critical %s after SIGSTOP, dropped by the replicas %s after that; "+
		"resumed and taken back in %s; Consul restarted in %s, everything registered again %s after the restart, "+
		"agents held throughout (minimum %v of %d over %d samples); %d executions, %d lost attempts retried, every chain SUCCEEDED; test ran %s",
		found.Round(time.Millisecond), victim, criticalAt.Sub(stopped).Round(time.Millisecond), dropped.Sub(criticalAt).Round(time.Millisecond),
		takenBack.Round(time.Millisecond), restarted.Round(time.Millisecond), reRegistered.Round(time.Millisecond),
		minOwned, agentCount, samples, len(execs), lost, time.Since(started).Round(time.Second))
}
