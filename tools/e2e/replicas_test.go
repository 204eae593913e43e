package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/dispatch"
	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
)

// The shape of TestReplicasFireExactlyOnce.
const (
	replicaCount = 3
	agentCount   = 3
	jobCount     = 200
	// napCount more jobs run the sleep handler for napFor every second on one of the agents
	// of the replica that is killed, so that executions are running there when it dies.
	napCount = 10
	napFor   = 2 * time.Second
	// runFor is how long the jobs fire, from their creation to their pause; the replica is
	// killed at killAfter.
	runFor    = 22 * time.Second
	killAfter = 9 * time.Second
	// replicaTTL is the replicas' --replica-ttl: a killed replica's agents move after
	// about this long.
	replicaTTL = 3 * time.Second
)

// TestReplicasFireExactlyOnce runs three production tockd replicas on one PostgreSQL, with
// three agents, and 200 jobs firing every second (and 10 whose handler sleeps 2s, so that
// executions are running when a replica dies). In the middle it kills, with SIGKILL, a
// replica that owns agents. It then checks, from the fire records and the executions, that
// every (job, second) fired exactly once, that no nominal time is missing, that every fire's
// execution chain succeeded, and that the killed replica's agents were taken over.
func TestReplicasFireExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 30 seconds; skipped with -short")
	}
	started := time.Now()
	db := pgtest.NewDatabase(t)

	// The schema is applied by tockd migrate, as a deployment would before rolling out.
	out, err := exec.Command(filepath.Join(binDir, "tockd"), "migrate", "--store", db).CombinedOutput()
	require.NoError(t, err, "tockd migrate: %s", out)
	require.Contains(t, string(out), "migrations applied")

	// Three replicas start at once on the one database.
	addrs := freeAddrs(t, 2*replicaCount+2*agentCount)
	replicas := make([]*cluster, replicaCount)
	ids := make([]string, replicaCount)
	for i := range replicas {
		ids[i] = fmt.Sprintf("replica-%d", i)
		replicas[i] = &cluster{t: t, grpcAddr: addrs[2*i], httpAddr: addrs[2*i+1]}
		replicas[i].tockd = startNamedProc(t, ids[i], "tockd",
			"--store", db, "--replica-id", ids[i],
			"--grpc-addr", replicas[i].grpcAddr, "--http-addr", replicas[i].httpAddr,
			"--replica-ttl", replicaTTL.String(), "--log-level", "warn")
	}
	api := replicas[0] // the API every replica serves; replica-0 is never killed
	for _, r := range replicas {
		r.eventually(30*time.Second, "tockd answers /healthz", func() bool {
			return r.send(http.MethodGet, "/healthz", nil, nil) == nil
		})
	}

	// Each agent sits next to its own example service and registers with replica-0. The ids
	// are fixed, so ownership is too: replica-1 owns one agent and replica-2 two.
	agents := make([]string, agentCount)
	for i := range agents {
		agents[i] = fmt.Sprintf("agent-%d", i)
		appAddr, agentAddr := addrs[2*replicaCount+2*i], addrs[2*replicaCount+2*i+1]
		startNamedProc(t, fmt.Sprintf("example-go-%d", i), "example-go", "--listen", appAddr)
		startNamedProc(t, agents[i], "tock-agent", "--id", agents[i], "--listen", agentAddr,
			"--app-addr", appAddr, "--service", "default", "--capacity", "256", "--labels", "agent="+agents[i],
			"--register", api.grpcAddr, "--log-level", "warn")
	}
	api.eventually(30*time.Second, "every agent is held by the replica rendezvous hashing chooses", func() bool {
		return ownedAsHashed(api.agentOwners(), agents, ids)
	})

	// The replica to kill: the one that owns the most agents (never replica-0, which the
	// agents register with).
	owners := api.agentOwners()
	victim := ""
	for _, id := range ids[1:] {
		if victim == "" || len(ownedBy(owners, id)) > len(ownedBy(owners, victim)) {
			victim = id
		}
	}
	victimAgents := ownedBy(owners, victim)
	require.NotEmpty(t, victimAgents, "no replica but replica-0 owns an agent: %v", owners)

	// 200 jobs firing every second, and a few that sleep, created through every replica.
	jobs := make([]string, 0, jobCount+napCount)
	for i := range jobCount {
		jobs = append(jobs, fmt.Sprintf("tick-%03d", i))
	}
	for i := range napCount {
		jobs = append(jobs, fmt.Sprintf("nap-%02d", i))
	}
	parallel(t, jobs, func(i int, name string) error {
		job := map[string]any{
			"name":     name,
			"handler":  "echo",
			"schedule": map[string]any{"cron": "* * * * * *", "timezone": "UTC"},
			"payload":  map[string]any{"job": name},
			"timeout":  "10s",
		}
		if strings.HasPrefix(name, "nap-") {
			job["handler"] = "sleep"
			job["payload"] = map[string]any{"ms": napFor.Milliseconds()}
			job["selector"] = map[string]string{"agent": victimAgents[0]}
		}
		return replicas[i%replicaCount].send(http.MethodPost, "/v1/jobs", job, nil)
	})
	created := time.Now()

	// Kill, with SIGKILL, the replica chosen above.
	wait(t, created.Add(killAfter))
	require.Equal(t, victimAgents, ownedBy(api.agentOwners(), victim), "ownership moved before the kill")
	killed := time.Now()
	replicas[slices.Index(ids, victim)].tockd.kill()
	survivors := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == victim })

	// Its agents move to the survivors, each to its rendezvous owner among them.
	api.eventually(replicaTTL+15*time.Second, "the killed replica's agents are taken over", func() bool {
		now := api.agentOwners()
		for _, a := range victimAgents {
			if now[a] != dispatch.Owner(a, survivors) {
				return false
			}
		}
		return true
	})
	takeover := time.Since(killed)
	require.True(t, ownedAsHashed(api.agentOwners(), agents, survivors), "every agent is owned as hashed over the survivors")

	// Let the jobs fire until runFor has passed, then pause them all: from then on their
	// nominal times are recorded as skipped, and no execution starts.
	wait(t, created.Add(runFor))
	paused := time.Now()
	parallel(t, jobs, func(_ int, name string) error {
		return api.send(http.MethodPost, "/v1/jobs/"+name+":pause", map[string]any{}, nil)
	})

	// Every execution ends: those the killed replica assigned but never sent are retried
	// once their lease (10s) lapses.
	var execs []execution
	api.eventually(40*time.Second, "every execution has ended", func() bool {
		execs = api.allExecutions()
		for _, e := range execs {
			if !finalState(e.State) {
				return false
			}
		}
		return true
	})

	// The fire records: every nominal time once, with no gap, from each job's first fire to
	// its last.
	var (
		mu    sync.Mutex
		fires = map[string][]fire{}
	)
	parallel(t, jobs, func(_ int, name string) error {
		// Wait until the pause shows in the records: the newest fire skipped as paused.
		deadline := time.Now().Add(15 * time.Second)
		for {
			fs, err := api.allFires(name)
			if err != nil {
				return err
			}
			if len(fs) > 0 && fs[0].Outcome == "FIRE_OUTCOME_SKIPPED_PAUSED" {
				mu.Lock()
				fires[name] = fs
				mu.Unlock()
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no fire recorded as skipped while paused, 15s after the pause")
			}
			time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
		}
	})
	var (
		total, duplicates, missing int
		outcomes                   = map[string]int{}
		windowStart, windowEnd     time.Time // the seconds every job fired through
	)
	for _, name := range jobs {
		fs := fires[name]
		require.NotEmpty(t, fs, "job %s has no fires", name)
		sort.Slice(fs, func(i, j int) bool { return fs[i].NominalTime.Before(fs[j].NominalTime) })
		total += len(fs)
		var firstRun, lastRun time.Time
		for k, f := range fs {
			outcomes[strings.TrimPrefix(f.Outcome, "FIRE_OUTCOME_")]++
			if k > 0 {
				switch gap := f.NominalTime.Sub(fs[k-1].NominalTime); {
				case gap == 0:
					duplicates++
				case gap > time.Second:
					missing += int(gap/time.Second) - 1
					t.Errorf("job %s: no fire recorded between %s and %s", name, fs[k-1].NominalTime, f.NominalTime)
				}
			}
			if f.Outcome == "FIRE_OUTCOME_DISPATCHED" {
				if firstRun.IsZero() {
					firstRun = f.NominalTime
				}
				lastRun = f.NominalTime
			}
		}
		if windowStart.IsZero() || firstRun.After(windowStart) {
			windowStart = firstRun
		}
		if windowEnd.IsZero() || lastRun.Before(windowEnd) {
			windowEnd = lastRun
		}
	}
	window := windowEnd.Sub(windowStart) + time.Second
	// In the window every job dispatched every second: nothing missed or skipped there.
	inWindow := 0
	for _, name := range jobs {
		for _, f := range fires[name] {
			if f.NominalTime.Before(windowStart) || f.NominalTime.After(windowEnd) {
				continue
			}
			inWindow++
			require.Equal(t, "FIRE_OUTCOME_DISPATCHED", f.Outcome, "job %s at %s", name, f.NominalTime)
		}
	}

	// The executions: one chain per dispatched fire, each ending in SUCCEEDED.
	type fireKey struct {
		job     string
		nominal time.Time
	}
	chains := map[fireKey][]execution{}
	for _, e := range execs {
		k := fireKey{e.Job, e.NominalTime}
		chains[k] = append(chains[k], e)
	}
	retried, lost, firstAttempts, carried := 0, 0, 0, 0
	// From the nominal time to the handler's start, first attempts of the echo jobs (the
	// sleeping ones wait for their one agent while it is taken over).
	var lateness []time.Duration
	for _, name := range jobs {
		for _, f := range fires[name] {
			if f.Outcome != "FIRE_OUTCOME_DISPATCHED" {
				continue
			}
			chain := chains[fireKey{name, f.NominalTime}]
			require.NotEmpty(t, chain, "job %s at %s has no execution", name, f.NominalTime)
			first, succeeded := 0, false
			for _, e := range chain {
				switch {
				case e.Attempt == 1:
					first++
					require.Equal(t, f.ExecutionID, e.ID, "the fire names its first attempt")
					if e.StartTime != nil && strings.HasPrefix(name, "tick-") {
						lateness = append(lateness, e.StartTime.Sub(e.NominalTime))
					}
				default:
					retried++
				}
				if strings.HasSuffix(e.State, "LOST") {
					lost++
				}
				succeeded = succeeded || strings.HasSuffix(e.State, "SUCCEEDED")
				// Running on one of the killed replica's agents when it died, and finished
				// after: its result was buffered by the agent and applied through the replica
				// that took the agent over.
				if slices.Contains(victimAgents, e.Agent) && e.StartTime != nil && e.FinishTime != nil &&
					e.StartTime.Before(killed) && e.FinishTime.After(killed) && e.Attempt == 1 &&
					strings.HasSuffix(e.State, "SUCCEEDED") {
					carried++
				}
			}
			require.Equal(t, 1, first, "job %s at %s ran more than once", name, f.NominalTime)
			require.True(t, succeeded, "job %s at %s never succeeded: %+v", name, f.NominalTime, chain)
			firstAttempts++
		}
	}

	t.Logf("replicas %d, agents %d, jobs %d (+%d sleeping %s), fired for %s, killed %s at +%s (owned %v)",
		replicaCount, agentCount, jobCount, napCount, napFor, paused.Sub(created).Round(time.Millisecond), victim,
		killed.Sub(created).Round(time.Millisecond), victimAgents)
	t.Logf("fires recorded %d %v; duplicates %d; missing nominal times %d", total, outcomes, duplicates, missing)
	t.Logf("window every job dispatched every second: %s to %s (%s, %d fires = %d jobs × %d s)",
		windowStart.Format(time.TimeOnly), windowEnd.Format(time.TimeOnly), window, inWindow, len(jobs), int(window/time.Second))
	slices.Sort(lateness)
	pct := func(p float64) time.Duration {
		if len(lateness) == 0 {
			return 0
		}
		return lateness[min(len(lateness)-1, int(p*float64(len(lateness))))].Round(time.Millisecond)
	}
	t.Logf("executions %d for %d dispatched fires: retried %d, lost %d; all succeeded; %d running on the killed replica's agents finished through the new owner",
		len(execs), firstAttempts, retried, lost, carried)
	t.Logf("start lateness of the echo jobs (nominal time to handler start): p50 %s, p99 %s, max %s",
		pct(0.5), pct(0.99), pct(1))
	t.Logf("takeover of %v: %s after SIGKILL (replica TTL %s); test ran %s",
		victimAgents, takeover.Round(time.Millisecond), replicaTTL, time.Since(started).Round(time.Second))

	// A replica stopped with SIGTERM deregisters first: its agents move at once, without
	// waiting for its registration to lapse.
	var graceful time.Duration
	for _, id := range survivors[1:] {
		theirs := ownedBy(api.agentOwners(), id)
		if len(theirs) == 0 {
			continue
		}
		rest := slices.DeleteFunc(slices.Clone(survivors), func(s string) bool { return s == id })
		p := replicas[slices.Index(ids, id)].tockd
		stopped := time.Now()
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		api.eventually(replicaTTL, "a stopped replica's agents move before its registration would lapse", func() bool {
			return ownedAsHashed(api.agentOwners(), theirs, rest)
		})
		graceful = time.Since(stopped)
		p.stop()
		t.Logf("SIGTERM to %s: its agents %v moved in %s", id, theirs, graceful.Round(time.Millisecond))
		break
	}

	require.Zero(t, duplicates, "a nominal time fired twice")
	require.Zero(t, missing, "nominal times went unrecorded")
	require.GreaterOrEqual(t, window, 20*time.Second, "every job fired every second for at least 20s")
	require.Equal(t, len(jobs)*int(window/time.Second), inWindow)
	require.Positive(t, carried, "no execution ran across the takeover")
	require.Less(t, takeover, replicaTTL+10*time.Second, "the agents moved within seconds")
}

// fire is one fire as the REST API shows it.
type fire struct {
	Job         string    `json:"job"`
	NominalTime time.Time `json:"nominalTime"`
	Outcome     string    `json:"outcome"`
	ExecutionID string    `json:"executionId"`
}

// get calls GET path and decodes the answer into out (when not nil).
func (c *cluster) get(path string, out any) (int, string) {
	c.t.Helper()
	return c.call(http.MethodGet, path, nil, out)
}

// agentOwners returns each registered agent's owning replica, as recorded.
func (c *cluster) agentOwners() map[string]string {
	c.t.Helper()
	var resp struct {
		Agents []struct {
			ID      string `json:"id"`
			Replica string `json:"replica"`
		} `json:"agents"`
	}
	code, body := c.get("/v1/agents", &resp)
	require.Equal(c.t, http.StatusOK, code, body)
	out := make(map[string]string, len(resp.Agents))
	for _, a := range resp.Agents {
		out[a.ID] = a.Replica
	}
	return out
}

// allFires returns every fire of a job, following the pages.
func (c *cluster) allFires(job string) ([]fire, error) {
	var all []fire
	token := ""
	for {
		var resp struct {
			Fires         []fire `json:"fires"`
			NextPageToken string `json:"nextPageToken"`
		}
		if err := c.send(http.MethodGet, "/v1/jobs/"+job+"/fires?pageSize=1000&pageToken="+url.QueryEscape(token), nil, &resp); err != nil {
			return nil, err
		}
		all = append(all, resp.Fires...)
		if resp.NextPageToken == "" {
			return all, nil
		}
		token = resp.NextPageToken
	}
}

// allExecutions returns every execution, following the pages.
func (c *cluster) allExecutions() []execution {
	c.t.Helper()
	var all []execution
	token := ""
	for {
		var resp struct {
			Executions    []execution `json:"executions"`
			NextPageToken string      `json:"nextPageToken"`
		}
		code, body := c.get("/v1/executions?pageSize=1000&pageToken="+url.QueryEscape(token), &resp)
		require.Equal(c.t, http.StatusOK, code, body)
		all = append(all, resp.Executions...)
		if resp.NextPageToken == "" {
			return all
		}
		token = resp.NextPageToken
	}
}

// ownedAsHashed reports whether every agent is recorded as held by its rendezvous owner
// among replicas.
func ownedAsHashed(owners map[string]string, agents, replicas []string) bool {
	for _, a := range agents {
		if owners[a] == "" || owners[a] != dispatch.Owner(a, replicas) {
			return false
		}
	}
	return true
}

// ownedBy returns the agents owners records as held by replica, sorted.
func ownedBy(owners map[string]string, replica string) []string {
	var out []string
	for a, r := range owners {
		if r == replica {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

func finalState(state string) bool {
	for _, s := range []string{"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "LOST"} {
		if strings.HasSuffix(state, s) {
			return true
		}
	}
	return false
}

// parallel calls fn for each item from a few goroutines, waits for them, and fails the test
// with the errors they returned.
func parallel(t *testing.T, items []string, fn func(i int, item string) error) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				if err := fn(i, items[i]); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", items[i], err))
					mu.Unlock()
				}
			}
		})
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
}

// send is call for goroutines other than the test's: it returns an error rather than
// failing the test, also for an answer whose status is not 200.
func (c *cluster) send(method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, "http://"+c.httpAddr+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// wait lets the workload run until the given time: the test measures what happens over a
// span of time, so here waiting is the point, not a way to synchronise.
func wait(t *testing.T, until time.Time) {
	t.Helper()
	select {
	case <-time.After(time.Until(until)):
	case <-t.Context().Done():
		t.Fatal("test ended while waiting")
	}
}
