package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// benchService is the service name of the bench agent; jobs select it.
const benchService = "bench"

// clusterConfig describes a Tock cluster for one workload case.
type clusterConfig struct {
	// Name names the case's database ("w4_10k_min") and log folder.
	Name string
	// Capacity is the agent's capacity: the most executions it runs at once.
	Capacity int
}

// tockCluster is one tockd replica in production mode on its own database of the run's
// PostgreSQL server, one tock-agent, and the bench handler service, each a process.
type tockCluster struct {
	env     *Env
	cfg     clusterConfig
	dir     string
	db      string
	tockd   *proc
	agent   *proc
	handler *proc

	grpcAddr, httpAddr string

	conn    *grpc.ClientConn
	jobs    tockv1.JobServiceClient
	execs   tockv1.ExecutionServiceClient
	agents  tockv1.AgentServiceClient
	records *handlerClient
}

// startTock creates a database for the case and starts tockd, the handler service and an
// agent, and waits until the agent is connected and serves the noop handler.
func (e *Env) startTock(ctx context.Context, cfg clusterConfig) (c *tockCluster, err error) {
	bins, err := e.binaries(ctx)
	if err != nil {
		return nil, err
	}
	c = &tockCluster{env: e, cfg: cfg, dir: filepath.Join(e.Dir, cfg.Name), db: "tock_" + cfg.Name}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.close(context.WithoutCancel(ctx))
		}
	}()
	// A checkpoint first, so that no case pays for the writes of the one before it.
	e.statusf("setup "+cfg.Name, "creating database %s and checkpointing", c.db)
	if err := e.PG.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+c.db+" WITH (FORCE)", "CREATE DATABASE "+c.db, "CHECKPOINT"); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	addrs := make([]string, 5)
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	c.grpcAddr, c.httpAddr = addrs[0], addrs[1]
	appAddr, recAddr, agentAddr := addrs[2], addrs[3], addrs[4]

	tag := "setup " + cfg.Name
	e.statusf(tag, "starting tockd (production mode, PostgreSQL store)")
	args := append([]string{"--store", e.PG.url(c.db), "--grpc-addr", c.grpcAddr, "--http-addr", c.httpAddr,
		"--replica-id", "bench-replica"}, e.TockdArgs...)
	if c.tockd, err = startProc(c.dir, "tockd", nil, nil, bins.tockd, args...); err != nil {
		return nil, err
	}
	if err := c.tockd.waitUntil(ctx, 60*time.Second, "answering /healthz", func(ctx context.Context) bool {
		return c.httpGet(ctx, "/healthz", io.Discard) == nil
	}); err != nil {
		return nil, err
	}
	c.conn, err = grpc.NewClient(c.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	c.jobs = tockv1.NewJobServiceClient(c.conn)
	c.execs = tockv1.NewExecutionServiceClient(c.conn)
	c.agents = tockv1.NewAgentServiceClient(c.conn)

	e.statusf(tag, "starting the bench handler service")
	if c.handler, err = startProc(c.dir, "handler-service", nil, append(os.Environ(), roleEnv+"="+roleHandler),
		bins.self, "-listen", appAddr, "-records", recAddr); err != nil {
		return nil, err
	}
	c.records = newHandlerClient(recAddr)
	if err := c.handler.waitUntil(ctx, 30*time.Second, "serving records", func(ctx context.Context) bool {
		_, err := c.records.count(ctx, recordFilter{})
		return err == nil
	}); err != nil {
		return nil, err
	}

	e.statusf(tag, "starting tock-agent (capacity %d)", cfg.Capacity)
	if c.agent, err = startProc(c.dir, "tock-agent", nil, nil, bins.agent,
		"--listen", agentAddr, "--app-addr", appAddr, "--register", c.grpcAddr, "--service", benchService,
		"--id", "bench-agent", "--capacity", strconv.Itoa(cfg.Capacity), "--log-format", "json"); err != nil {
		return nil, err
	}
	if err := c.agent.waitUntil(ctx, 60*time.Second, "connected with the noop handler", func(ctx context.Context) bool {
		resp, err := c.agents.ListAgents(ctx, &tockv1.ListAgentsRequest{Service: benchService})
		if err != nil {
			return false
		}
		for _, a := range resp.GetAgents() {
			if a.GetConnected() && slices.Contains(a.GetHandlers(), noopHandler) {
				return true
			}
		}
		return false
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// close stops the agent (it drains), tockd and the handler service, and drops the database.
func (c *tockCluster) close(ctx context.Context) error {
	var errs []error
	for _, p := range []*proc{c.agent, c.tockd, c.handler} {
		if p != nil {
			errs = append(errs, p.stop(syscall.SIGTERM, 45*time.Second))
		}
	}
	if c.conn != nil {
		errs = append(errs, c.conn.Close())
	}
	errs = append(errs, c.env.PG.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+c.db+" WITH (FORCE)"))
	return errors.Join(errs...)
}

// alive returns an error naming a process of the cluster that has exited.
func (c *tockCluster) alive() error {
	for _, p := range []*proc{c.tockd, c.agent, c.handler} {
		if p != nil && p.exited() {
			return p.failure(fmt.Errorf("exited during the run: %v", p.err))
		}
	}
	return nil
}

// httpGet fetches a path of tockd's HTTP listener into w.
func (c *tockCluster) httpGet(ctx context.Context, path string, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.httpAddr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// saveMetrics writes tockd's /metrics to the output folder as name.
func (c *tockCluster) saveMetrics(ctx context.Context, name string) error {
	f, err := os.Create(filepath.Join(c.env.Out, name))
	if err != nil {
		return err
	}
	defer f.Close()
	return c.httpGet(ctx, "/metrics", f)
}

// metricValue returns the value of a metric line of tockd's /metrics (the first sample whose
// name and labels start with prefix), or 0 when absent.
func (c *tockCluster) metricValue(ctx context.Context, prefix string) float64 {
	var b strings.Builder
	if err := c.httpGet(ctx, "/metrics", &b); err != nil {
		return 0
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

// usage returns the CPU time and memory of tockd and the agent.
func (c *tockCluster) usage() (tockd, agent procUsage) {
	return usageOf(c.tockd.pid()), usageOf(c.agent.pid())
}

// noopJob returns a job that runs the noop handler on the bench agent; cron may be empty for
// a job that runs only when triggered.
func noopJob(name, cron string) *tockv1.Job {
	j := &tockv1.Job{
		Name:    name,
		Handler: noopHandler,
		Service: benchService,
		Timeout: durationpb.New(30 * time.Second),
	}
	if cron != "" {
		j.Schedule = &tockv1.Schedule{Trigger: &tockv1.Schedule_Cron{Cron: cron}, Timezone: "UTC"}
	}
	return j
}

// createJobs creates jobs through the API with parallel callers, reporting progress on stderr
// under tag.
func (c *tockCluster) createJobs(ctx context.Context, tag string, jobs []*tockv1.Job, parallel int) error {
	return forEach(ctx, c.env, tag, "creating jobs", len(jobs), parallel, func(ctx context.Context, i int) error {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if _, err := c.jobs.CreateJob(cctx, &tockv1.CreateJobRequest{Job: jobs[i]}); err != nil {
			return fmt.Errorf("create job %s: %w", jobs[i].GetName(), err)
		}
		return nil
	})
}

// forEach calls fn for 0, 1, … n−1, at most parallel calls at once, and says every second
// how many are done. It stops at the first error.
func forEach(ctx context.Context, env *Env, tag, what string, n, parallel int, fn func(ctx context.Context, i int) error) error {
	var done atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	progress := make(chan struct{})
	go func() {
		defer close(progress)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				env.statusf(tag, "%s %d/%d", what, done.Load(), n)
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := range n {
		g.Go(func() error {
			if err := fn(gctx, i); err != nil {
				return err
			}
			done.Add(1)
			return nil
		})
	}
	err := g.Wait()
	cancel()
	<-progress
	env.statusf(tag, "%s: %d/%d done", what, done.Load(), n)
	return err
}

// listFires returns a job's fires with nominal times at or after since, newest first.
func (c *tockCluster) listFires(ctx context.Context, job string, since time.Time, pageSize int32) ([]*tockv1.Fire, error) {
	var out []*tockv1.Fire
	token := ""
	for range 1000 {
		resp, err := c.jobs.ListFires(ctx, &tockv1.ListFiresRequest{Job: job, PageSize: pageSize, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list fires of %s: %w", job, err)
		}
		for _, f := range resp.GetFires() {
			if f.GetNominalTime().AsTime().Before(since) {
				return out, nil
			}
			out = append(out, f)
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
	return out, errors.New("list fires: more than 1000 pages")
}

// listExecutions returns every execution created at or after since (by create time), newest
// first, paging through the whole list.
func (c *tockCluster) listExecutions(ctx context.Context, since time.Time) ([]*tockv1.Execution, error) {
	var out []*tockv1.Execution
	token := ""
	for range 100000 {
		resp, err := c.execs.ListExecutions(ctx, &tockv1.ListExecutionsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list executions: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			if e.GetCreateTime().AsTime().Before(since) {
				return out, nil
			}
			out = append(out, e)
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
	return out, errors.New("list executions: too many pages")
}
