package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	// NoAgent starts the cluster without an agent (default false: one agent, "bench-agent");
	// the workload starts its agents with startAgent when it wants them.
	NoAgent bool
	// Replicas is how many tockd replicas run on the case's database (0 means 1): the first
	// is "bench-replica", the others "bench-replica-2", "bench-replica-3"…. Agents register
	// with the first, and the API clients (jobs, execs, agents) speak to it.
	Replicas int
	// TockdArgs are extra arguments for every tockd of the case, before Env.TockdArgs.
	TockdArgs []string
	// Env is extra environment (KEY=VALUE) for tockd, the agents and the handler service,
	// on top of this process's (default none), such as the OTEL_* variables of tracing.
	Env []string
	// HandlerCmd runs the handler service instead of this program in the handler-service
	// role (default): a program and its arguments, to which --listen and --records with
	// their addresses are appended. It must serve the noop handler and its records as
	// handlersvc.go does.
	HandlerCmd []string
}

// tockReplica is a tockd replica of a cluster after the first.
type tockReplica struct {
	id                 string
	proc               *proc
	grpcAddr, httpAddr string
}

// tockCluster is one tockd replica in production mode on its own database of the run's
// PostgreSQL server, one tock-agent, and the bench handler service, each a process.
type tockCluster struct {
	env     *Env
	cfg     clusterConfig
	dir     string
	db      string
	tockd   *proc
	agent   *proc   // the first agent started; nil until one is
	more    []*proc // the agents started after the first
	handler *proc
	// replicas are the tockd replicas after the first (tockd), when cfg.Replicas > 1.
	replicas []*tockReplica

	grpcAddr, httpAddr, appAddr string

	conn    *grpc.ClientConn
	jobs    tockv1.JobServiceClient
	execs   tockv1.ExecutionServiceClient
	agents  tockv1.AgentServiceClient
	records *handlerClient
}

// startTock creates a database for the case and starts tockd, the handler service and an
// agent (unless cfg.NoAgent), and waits until the agent is connected and serves the noop
// handler.
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
	addrs := make([]string, 4)
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	c.grpcAddr, c.httpAddr, c.appAddr = addrs[0], addrs[1], addrs[2]
	recAddr := addrs[3]

	tag := "setup " + cfg.Name
	e.statusf(tag, "starting tockd (production mode, PostgreSQL store)")
	if c.tockd, err = c.startReplica(ctx, "bench-replica", "tockd", c.grpcAddr, c.httpAddr); err != nil {
		return nil, err
	}
	for i := 2; i <= cfg.Replicas; i++ {
		r := &tockReplica{id: fmt.Sprintf("bench-replica-%d", i)}
		if r.grpcAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		if r.httpAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		e.statusf(tag, "starting tockd %s", r.id)
		r.proc, err = c.startReplica(ctx, r.id, "tockd-"+r.id, r.grpcAddr, r.httpAddr)
		if r.proc != nil {
			c.replicas = append(c.replicas, r) // stopped by close, also when it failed to start
		}
		if err != nil {
			return nil, err
		}
	}
	c.conn, err = grpc.NewClient(c.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	c.jobs = tockv1.NewJobServiceClient(c.conn)
	c.execs = tockv1.NewExecutionServiceClient(c.conn)
	c.agents = tockv1.NewAgentServiceClient(c.conn)

	e.statusf(tag, "starting the bench handler service")
	handlerCmd := []string{bins.self}
	if len(cfg.HandlerCmd) > 0 {
		handlerCmd = cfg.HandlerCmd
	}
	handlerArgs := append(append([]string{}, handlerCmd[1:]...), "--listen", c.appAddr, "--records", recAddr)
	if c.handler, err = startProc(c.dir, "handler-service", nil, append(append(os.Environ(), cfg.Env...), roleEnv+"="+roleHandler),
		handlerCmd[0], handlerArgs...); err != nil {
		return nil, err
	}
	c.records = newHandlerClient(recAddr)
	if err := c.handler.waitUntil(ctx, 30*time.Second, "serving records", func(ctx context.Context) bool {
		_, err := c.records.count(ctx, recordFilter{})
		return err == nil
	}); err != nil {
		return nil, err
	}

	if !cfg.NoAgent {
		if _, err := c.startAgent(ctx, "bench-agent", cfg.Capacity); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// startReplica starts a tockd replica with id on the case's database, its output in logName,
// and waits until it answers /healthz.
func (c *tockCluster) startReplica(ctx context.Context, id, logName, grpcAddr, httpAddr string) (*proc, error) {
	bins, err := c.env.binaries(ctx)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--store", c.env.PG.url(c.db), "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--replica-id", id}, c.cfg.TockdArgs...)
	p, err := startProc(c.dir, logName, nil, c.procEnv(), bins.tockd, append(args, c.env.TockdArgs...)...)
	if err != nil {
		return nil, err
	}
	if err := p.waitUntil(ctx, 60*time.Second, "answering /healthz", func(ctx context.Context) bool {
		return httpGet(ctx, httpAddr, "/healthz", io.Discard) == nil
	}); err != nil {
		return p, err
	}
	return p, nil
}

// startAgent starts a tock-agent with id and capacity for the handler service, and waits
// until it is connected and serves the noop handler.
func (c *tockCluster) startAgent(ctx context.Context, id string, capacity int) (*proc, error) {
	bins, err := c.env.binaries(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c.env.statusf("setup "+c.cfg.Name, "starting tock-agent %s (capacity %d)", id, capacity)
	logName := "tock-agent"
	if c.agent != nil {
		logName += "-" + id
	}
	p, err := startProc(c.dir, logName, nil, c.procEnv(), bins.agent,
		"--listen", addr, "--app-addr", c.appAddr, "--register", c.grpcAddr, "--service", benchService,
		"--id", id, "--capacity", strconv.Itoa(capacity), "--log-format", "json")
	if err != nil {
		return nil, err
	}
	if c.agent == nil {
		c.agent = p
	} else {
		c.more = append(c.more, p)
	}
	if err := p.waitUntil(ctx, 60*time.Second, "connected with the noop handler", func(ctx context.Context) bool {
		resp, err := c.agents.ListAgents(ctx, &tockv1.ListAgentsRequest{Service: benchService})
		if err != nil {
			return false
		}
		for _, a := range resp.GetAgents() {
			if a.GetId() == id && a.GetConnected() && slices.Contains(a.GetHandlers(), noopHandler) {
				return true
			}
		}
		return false
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// close stops the agents (they drain), tockd and the handler service, and drops the database.
func (c *tockCluster) close(ctx context.Context) error {
	errs := []error{c.stopProcesses()}
	if c.conn != nil {
		errs = append(errs, c.conn.Close())
	}
	errs = append(errs, c.env.PG.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+c.db+" WITH (FORCE)"))
	return errors.Join(errs...)
}

// stopProcesses stops the agents (they drain), the tockd replicas and the handler service,
// and keeps the database; stopping a stopped process does nothing.
func (c *tockCluster) stopProcesses() error {
	var errs []error
	for _, p := range append(append(append([]*proc{c.agent}, c.more...), c.tockd), append(c.replicaProcs(), c.handler)...) {
		if p != nil {
			errs = append(errs, p.stop(syscall.SIGTERM, 45*time.Second))
		}
	}
	return errors.Join(errs...)
}

// procEnv is the environment of the cluster's processes: nil (this process's) unless
// cfg.Env adds to it.
func (c *tockCluster) procEnv() []string {
	if len(c.cfg.Env) == 0 {
		return nil
	}
	return append(os.Environ(), c.cfg.Env...)
}

// handlerUsage returns the CPU time and memory of the handler service.
func (c *tockCluster) handlerUsage() procUsage { return usageOf(c.handler.pid()) }

// alive returns an error naming a process of the cluster that has exited.
func (c *tockCluster) alive() error {
	for _, p := range append(append([]*proc{c.tockd, c.agent, c.handler}, c.more...), c.replicaProcs()...) {
		if p != nil && p.exited() {
			return p.failure(fmt.Errorf("exited during the run: %v", p.err))
		}
	}
	return nil
}

// replicaProcs returns the processes of the replicas after the first.
func (c *tockCluster) replicaProcs() []*proc {
	var out []*proc
	for _, r := range c.replicas {
		out = append(out, r.proc)
	}
	return out
}

// httpGet fetches a path of tockd's HTTP listener into w.
func (c *tockCluster) httpGet(ctx context.Context, path string, w io.Writer) error {
	return httpGet(ctx, c.httpAddr, path, w)
}

// httpGet fetches a path of the HTTP listener at addr into w.
func httpGet(ctx context.Context, addr, path string, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return fetch(ctx, http.DefaultClient, "http://"+addr+path, w)
}

// fetch GETs url with client and copies the body of a 200 answer to w; another status is an
// error quoting the start of the body.
func fetch(ctx context.Context, client *http.Client, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// fetchJSON GETs url with client and decodes the JSON body of a 200 answer into out.
func fetchJSON(ctx context.Context, client *http.Client, url string, out any) error {
	var b bytes.Buffer
	if err := fetch(ctx, client, url, &b); err != nil {
		return err
	}
	return json.Unmarshal(b.Bytes(), out)
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

// usage returns the CPU time and memory of tockd and the first agent (zero before one runs).
func (c *tockCluster) usage() (tockd, agent procUsage) {
	if c.agent != nil {
		agent = usageOf(c.agent.pid())
	}
	return usageOf(c.tockd.pid()), agent
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
