package e2e_test

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// agentSpec is one tock-agent of a fleet.
type agentSpec struct {
	id               string
	weight, capacity int
}

// fleetAgent is a running tock-agent next to its own example service.
type fleetAgent struct {
	agentSpec
	proc    *proc
	metrics string // the agent's /metrics URL
}

// fleet is one production tockd replica (SQLite, the built-in registry) with agents.
type fleet struct {
	*cluster
	agents map[string]*fleetAgent
}

// startFleet starts tockd with the given lease and the agents, each with its own example
// service, and waits until the replica holds a session with every agent.
func startFleet(t *testing.T, lease time.Duration, specs ...agentSpec) *fleet {
	t.Helper()
	addrs := freeAddrs(t, 2+3*len(specs))
	f := &fleet{
		cluster: &cluster{t: t, dataDir: t.TempDir(), grpcAddr: addrs[0], httpAddr: addrs[1]},
		agents:  map[string]*fleetAgent{},
	}
	f.tockd = startProc(t, "tockd",
		"--store", "sqlite://"+filepath.Join(f.dataDir, "tock.db"), "--replica-id", "replica-0",
		"--grpc-addr", f.grpcAddr, "--http-addr", f.httpAddr,
		"--lease", lease.String(), "--replica-ttl", "1s", "--log-level", "warn")
	f.eventually(30*time.Second, "tockd answers /healthz", func() bool {
		return f.send(http.MethodGet, "/healthz", nil, nil) == nil
	})
	for i, s := range specs {
		appAddr, agentAddr, metricsAddr := addrs[2+3*i], addrs[3+3*i], addrs[4+3*i]
		startNamedProc(t, "example-go-"+s.id, "example-go", "--listen", appAddr)
		p := startNamedProc(t, s.id, "tock-agent", "--id", s.id, "--listen", agentAddr, "--app-addr", appAddr,
			"--weight", strconv.Itoa(s.weight), "--capacity", strconv.Itoa(s.capacity),
			"--register", f.grpcAddr, "--register-ttl", "3s", "--metrics-addr", metricsAddr, "--log-level", "warn")
		f.agents[s.id] = &fleetAgent{agentSpec: s, proc: p, metrics: "http://" + metricsAddr + "/metrics"}
	}
	f.eventually(30*time.Second, "the replica holds a session with every agent", func() bool {
		owners := f.agentOwners()
		for id := range f.agents {
			if owners[id] != "replica-0" {
				return false
			}
		}
		return true
	})
	return f
}

// createSleepJob creates a job that runs the sleep handler for ms milliseconds per execution, with
// fast retries.
func (f *fleet) createSleepJob(name string, ms int) {
	f.t.Helper()
	require.NoError(f.t, f.send(http.MethodPost, "/v1/jobs", map[string]any{
		"name": name, "handler": "sleep", "payload": map[string]any{"ms": ms}, "timeout": "30s",
		"retryPolicy": map[string]any{"maxAttempts": 5, "initialBackoff": "0.1s"},
	}, nil))
}

// trigger starts an execution of the job.
func (f *fleet) trigger(job string) error {
	return f.send(http.MethodPost, "/v1/jobs/"+job+":trigger", map[string]any{}, nil)
}

// jobExecutions returns every execution of a job.
func (f *fleet) jobExecutions(job string) []execution {
	f.t.Helper()
	var out []execution
	for _, e := range f.allExecutions() {
		if e.Job == job {
			out = append(out, e)
		}
	}
	return out
}

// waitAllEnded polls until the job has want first attempts and every execution has ended.
func (f *fleet) waitAllEnded(job string, want int, timeout time.Duration) []execution {
	f.t.Helper()
	var execs []execution
	f.eventually(timeout, fmt.Sprintf("the %d executions of %s have ended", want, job), func() bool {
		execs = f.jobExecutions(job)
		first := 0
		for _, e := range execs {
			if !finalState(e.State) {
				return false
			}
			if e.Attempt == 1 {
				first++
			}
		}
		return first == want
	})
	return execs
}

// scrapeText reads a Prometheus text page.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	return string(b)
}

// promSum sums the samples of a metric whose labels contain every one of labels (each written
// k="v"), across its series.
func promSum(page, name string, labels ...string) float64 {
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		matched := true
		for _, l := range labels {
			matched = matched && strings.Contains(rest, l)
		}
		if !matched {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err == nil && !math.IsNaN(v) {
			sum += v
		}
	}
	return sum
}

// succeededPerAgent returns how many succeeded first attempts each agent ran.
func succeededPerAgent(execs []execution) map[string]int {
	out := map[string]int{}
	for _, e := range execs {
		if e.Attempt == 1 && strings.HasSuffix(e.State, "SUCCEEDED") {
			out[e.Agent]++
		}
	}
	return out
}

// requireNoneLost checks that every execution chain of execs ended SUCCEEDED.
func requireNoneLost(t *testing.T, execs []execution) (lostAttempts int) {
	t.Helper()
	byID := map[string]execution{}
	retried := map[string]bool{}
	for _, e := range execs {
		byID[e.ID] = e
		if e.RetryOf != "" {
			retried[e.RetryOf] = true
		}
	}
	for _, e := range execs {
		if retried[e.ID] {
			continue // not the end of its chain
		}
		require.True(t, strings.HasSuffix(e.State, "SUCCEEDED"), "execution %s (attempt %d on %s) ended %s", e.ID, e.Attempt, e.Agent, e.State)
	}
	for _, e := range execs {
		if strings.HasSuffix(e.State, "LOST") {
			lostAttempts++
		}
	}
	return lostAttempts
}

// TestWeightsAndCapacity runs three agents of weights 1, 2 and 3, each with capacity 10.
// First 600 executions of the sleep handler are offered at a steady rate that keeps about 14
// in flight, below the 30 the agents can hold: weighted least connections gives the agents
// 1:2:3 of them. Then 600 more are offered at once, far above capacity: no agent is ever
// given more than its capacity (every assignment's load is recorded by the replica, and the
// agents' own running gauges are sampled), none is handed back, and all of them succeed.
func TestWeightsAndCapacity(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs for about 25 seconds; skipped with -short")
	}
	started := time.Now()
	specs := []agentSpec{{"agent-w1", 1, 10}, {"agent-w2", 2, 10}, {"agent-w3", 3, 10}}
	f := startFleet(t, 15*time.Second, specs...)

	// Steady: 48 a second of a 300ms handler is about 14 in flight.
	const (
		total    = 600
		rate     = 48
		napMS    = 300
		burstNap = 200
	)
	f.createSleepJob("steady", napMS)
	offered := time.Now()
	tick := time.NewTicker(time.Second / rate)
	for range total {
		<-tick.C // the offered rate is what the test measures under, not synchronisation
		require.NoError(t, f.trigger("steady"))
	}
	tick.Stop()
	offerFor := time.Since(offered)
	steady := f.waitAllEnded("steady", total, 60*time.Second)
	require.Len(t, steady, total, "no execution was retried")
	require.Zero(t, requireNoneLost(t, steady))
	per := succeededPerAgent(steady)
	weightSum := 0
	for _, s := range specs {
		weightSum += s.weight
	}
	var ratios []string
	for _, s := range specs {
		want := float64(total*s.weight) / float64(weightSum)
		got := float64(per[s.id])
		ratios = append(ratios, fmt.Sprintf("%s %d (%.3f of its share)", s.id, per[s.id], got/want))
		require.InDelta(t, want, got, want*0.10, "agent %s (weight %d) ran %d of %d", s.id, s.weight, per[s.id], total)
	}
	t.Logf("steady: %d executions of %dms offered over %s (%.1f/s): %s", total, napMS, offerFor.Round(time.Millisecond),
		float64(total)/offerFor.Seconds(), strings.Join(ratios, ", "))

	// Over capacity: 600 at once. The agents' running gauges are sampled meanwhile.
	f.createSleepJob("burst", burstNap)
	var (
		samplesMu sync.Mutex
		maxSeen   = map[string]float64{}
		samples   int
		stop      = make(chan struct{})
		sampled   = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for id, a := range f.agents {
				resp, err := http.Get(a.metrics)
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				running := promSum(string(b), "tock_agent_executions_running")
				samplesMu.Lock()
				maxSeen[id] = max(maxSeen[id], running)
				samples++
				samplesMu.Unlock()
			}
		}
	}()
	burstStart := time.Now()
	jobs := make([]string, total)
	for i := range jobs {
		jobs[i] = "burst"
	}
	parallel(t, jobs, func(int, string) error { return f.trigger("burst") })
	burst := f.waitAllEnded("burst", total, 90*time.Second)
	burstFor := time.Since(burstStart)
	close(stop)
	<-sampled
	require.Len(t, burst, total, "no execution was retried")
	require.Zero(t, requireNoneLost(t, burst))

	// The replica's record of every assignment: in flight over capacity, right after it.
	page := scrapeText(t, "http://"+f.httpAddr+"/metrics")
	assigned := promSum(page, "tock_assignment_agent_load_ratio_count")
	atMostFull := promSum(page, "tock_assignment_agent_load_ratio_bucket", `le="1"`)
	require.GreaterOrEqual(t, assigned, float64(2*total))
	require.Equal(t, assigned, atMostFull, "an assignment took an agent beyond its capacity")
	require.Zero(t, promSum(page, "tock_results_rejected_total"))
	perBurst := succeededPerAgent(burst)
	for _, s := range specs {
		a := f.agents[s.id]
		agentPage := scrapeText(t, a.metrics)
		require.Zero(t, promSum(agentPage, "tock_agent_assignments_released_total"), "agent %s handed work back", s.id)
		require.LessOrEqual(t, maxSeen[s.id], float64(s.capacity), "agent %s ran more than its capacity", s.id)
	}
	t.Logf("over capacity: %d executions of %dms offered at once, done in %s: per agent %v; "+
		"%d assignments recorded, all at or below capacity; agents' running gauges sampled %d times, max %v (capacity 10 each); nothing released, lost or retried",
		total, burstNap, burstFor.Round(time.Millisecond), perBurst, int(assigned), samples, maxSeen)
	t.Logf("test ran %s", time.Since(started).Round(time.Second))
}

// TestAgentKilledAndPaused kills an agent (SIGKILL) while it runs executions: each is
// retried on another agent once its lease (3s) has run out. Then it pauses another agent
// (SIGSTOP) while it runs executions, lets their leases run out and their retries succeed
// elsewhere, and resumes it (SIGCONT): the results it then delivers are rejected, never
// applied. Nothing is lost.
func TestAgentKilledAndPaused(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs for about 25 seconds; skipped with -short")
	}
	started := time.Now()
	const lease = 3 * time.Second
	f := startFleet(t, lease, agentSpec{"agent-0", 1, 4}, agentSpec{"agent-1", 1, 4}, agentSpec{"agent-2", 1, 4})
	f.createSleepJob("nap", 2500)

	// runningOn waits until n executions of the job run on the agent and returns them.
	runningOn := func(agent string, n int) []execution {
		var on []execution
		f.eventually(20*time.Second, fmt.Sprintf("%d executions run on %s", n, agent), func() bool {
			on = on[:0]
			for _, e := range f.jobExecutions("nap") {
				if e.Agent == agent && strings.HasSuffix(e.State, "RUNNING") {
					on = append(on, e)
				}
			}
			return len(on) == n
		})
		return on
	}

	// SIGKILL: six executions, two on each agent; agent-0 dies running its two.
	for range 6 {
		require.NoError(t, f.trigger("nap"))
	}
	victims := runningOn("agent-0", 2)
	killed := time.Now()
	f.agents["agent-0"].proc.kill()
	execs := f.waitAllEnded("nap", 6, 40*time.Second)
	retryOf := map[string]execution{}
	for _, e := range execs {
		if e.RetryOf != "" {
			retryOf[e.RetryOf] = e
		}
	}
	var retriedAfter []time.Duration
	for _, v := range victims {
		var lost execution
		for _, e := range execs {
			if e.ID == v.ID {
				lost = e
			}
		}
		require.True(t, strings.HasSuffix(lost.State, "LOST"), "the killed agent's execution %s ended %s", v.ID, lost.State)
		retry, ok := retryOf[v.ID]
		require.True(t, ok, "execution %s was not retried", v.ID)
		require.True(t, strings.HasSuffix(retry.State, "SUCCEEDED"))
		require.NotEqual(t, "agent-0", retry.Agent)
		require.NotNil(t, retry.StartTime)
		retriedAfter = append(retriedAfter, retry.StartTime.Sub(killed))
		require.Greater(t, retry.StartTime.Sub(killed), lease-time.Second, "retried before the lease ran out")
	}
	require.Equal(t, 2, requireNoneLost(t, execs))

	// SIGSTOP: four more, two on each live agent; agent-1 is paused running its two.
	before := len(execs)
	for range 4 {
		require.NoError(t, f.trigger("nap"))
	}
	paused := runningOn("agent-1", 2)
	pausedAt := time.Now()
	agent1 := f.agents["agent-1"].proc
	require.NoError(t, agent1.cmd.Process.Signal(syscall.SIGSTOP))
	resumed := false
	defer func() {
		if !resumed {
			_ = agent1.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	// Their leases run out and their retries succeed on agent-2, the one live agent.
	f.eventually(30*time.Second, "the paused agent's executions are retried and succeed", func() bool {
		execs = f.jobExecutions("nap")
		done := 0
		for _, e := range execs {
			for _, p := range paused {
				if e.RetryOf == p.ID && strings.HasSuffix(e.State, "SUCCEEDED") {
					done++
				}
			}
		}
		return done == len(paused)
	})
	rejectedBefore := promSum(scrapeText(t, "http://"+f.httpAddr+"/metrics"), "tock_results_rejected_total")
	require.NoError(t, agent1.cmd.Process.Signal(syscall.SIGCONT))
	resumed = true
	resumedAt := time.Now()
	// The handlers finished on the service while the agent was paused; resumed, the agent
	// reports their results, under the epochs of the lost assignments: rejected.
	f.eventually(30*time.Second, "the paused agent's late results are rejected", func() bool {
		page := scrapeText(t, "http://"+f.httpAddr+"/metrics")
		return promSum(page, "tock_results_rejected_total")-rejectedBefore >= float64(len(paused))
	})
	agentPage := scrapeText(t, f.agents["agent-1"].metrics)
	require.GreaterOrEqual(t, promSum(agentPage, "tock_agent_executions_finished_total", `outcome="succeeded"`), float64(2+len(paused)),
		"the paused agent's handlers finished and it reported them")
	execs = f.waitAllEnded("nap", 10, 30*time.Second)
	require.Len(t, execs, before+4+len(paused))
	for _, p := range paused {
		for _, e := range execs {
			switch {
			case e.ID == p.ID:
				require.True(t, strings.HasSuffix(e.State, "LOST"), "the late result was applied: %s is %s", e.ID, e.State)
				require.Equal(t, "agent-1", e.Agent)
				require.Equal(t, p.LeaseEpoch, e.LeaseEpoch)
			case e.RetryOf == p.ID:
				require.True(t, strings.HasSuffix(e.State, "SUCCEEDED"))
				require.Equal(t, "agent-2", e.Agent, "retried on the live agent")
			}
		}
	}
	lost := requireNoneLost(t, execs)
	require.Equal(t, 4, lost, "two lost attempts per agent, each retried")
	rejected := promSum(scrapeText(t, "http://"+f.httpAddr+"/metrics"), "tock_results_rejected_total")
	slices.Sort(retriedAfter)
	t.Logf("SIGKILL: %d executions running on agent-0 were retried elsewhere %v after the kill (lease %s); "+
		"SIGSTOP: %d executions of agent-1 lost and retried on agent-2, paused %s; after SIGCONT its %d late results were rejected (tock_results_rejected_total %v), within %s; "+
		"%d executions for 10 triggers, every chain SUCCEEDED; test ran %s",
		len(victims), retriedAfter, lease, len(paused), resumedAt.Sub(pausedAt).Round(time.Millisecond), len(paused), rejected,
		time.Since(resumedAt).Round(time.Millisecond), len(execs), time.Since(started).Round(time.Second))
}

// TestRoutingStrategies runs jobs with the strategies that change which executions exist or
// where they go, on three agents: a sharded job's fire becomes its shards, a broadcast's one
// execution per agent, a consistent-hash job's executions all go to one agent, and round
// robin visits the agents in turn.
func TestRoutingStrategies(t *testing.T) {
	t.Parallel()
	f := startFleet(t, 15*time.Second, agentSpec{"agent-a", 1, 8}, agentSpec{"agent-b", 1, 8}, agentSpec{"agent-c", 1, 8})
	create := func(name string, routing map[string]any) {
		require.NoError(t, f.send(http.MethodPost, "/v1/jobs", map[string]any{
			"name": name, "handler": "echo", "payload": map[string]any{"job": name}, "routing": routing,
		}, nil))
	}
	type routed struct {
		Agent      string `json:"agent"`
		State      string `json:"state"`
		ShardIndex int    `json:"shardIndex"`
		ShardTotal int    `json:"shardTotal"`
	}
	ended := func(job string, n int) []routed {
		var execs []routed
		f.eventually(30*time.Second, fmt.Sprintf("%d executions of %s succeeded", n, job), func() bool {
			var resp struct {
				Executions []routed `json:"executions"`
			}
			if err := f.send(http.MethodGet, "/v1/executions?pageSize=1000&job="+job, nil, &resp); err != nil {
				return false
			}
			execs = resp.Executions
			return len(execs) == n && countRouted(execs, func(e routed) bool { return strings.HasSuffix(e.State, "SUCCEEDED") }) == n
		})
		return execs
	}

	create("sharded", map[string]any{"strategy": "ROUTING_STRATEGY_SHARDING", "shards": 5})
	require.NoError(t, f.trigger("sharded"))
	shards := ended("sharded", 5)
	var indexes []int
	for _, e := range shards {
		require.Equal(t, 5, e.ShardTotal)
		indexes = append(indexes, e.ShardIndex)
	}
	slices.Sort(indexes)
	require.Equal(t, []int{0, 1, 2, 3, 4}, indexes)

	create("everywhere", map[string]any{"strategy": "ROUTING_STRATEGY_BROADCAST"})
	require.NoError(t, f.trigger("everywhere"))
	var on []string
	for _, e := range ended("everywhere", 3) {
		on = append(on, e.Agent)
	}
	slices.Sort(on)
	require.Equal(t, []string{"agent-a", "agent-b", "agent-c"}, on)

	create("hashed", map[string]any{"strategy": "ROUTING_STRATEGY_CONSISTENT_HASH", "hashKey": "customer-42"})
	create("turns", map[string]any{"strategy": "ROUTING_STRATEGY_ROUND_ROBIN"})
	for range 6 {
		require.NoError(t, f.trigger("hashed"))
		require.NoError(t, f.trigger("turns"))
	}
	hashed := map[string]int{}
	for _, e := range ended("hashed", 6) {
		hashed[e.Agent]++
	}
	require.Len(t, hashed, 1, "one key, one agent: %v", hashed)
	turns := map[string]int{}
	for _, e := range ended("turns", 6) {
		turns[e.Agent]++
	}
	require.Equal(t, map[string]int{"agent-a": 2, "agent-b": 2, "agent-c": 2}, turns)
	t.Logf("sharded into %v; broadcast to %v; hashed to %v; round robin %v", indexes, on, hashed, turns)
}

func countRouted[T any](items []T, ok func(T) bool) int {
	n := 0
	for _, it := range items {
		if ok(it) {
			n++
		}
	}
	return n
}
