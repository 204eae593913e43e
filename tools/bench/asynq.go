package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// The cron scheduler peer is Asynq (github.com/hibiken/asynq), a Go task queue on Redis with
// a cron scheduler, driven as a library from this program against a Redis server of its own:
// redis-server from the Debian package, started per case in the case's folder with the
// persistence a production user would configure (append-only file, fsync every second).
// Its scheduler, server and no-op handler run in this process; the handler notes the instant
// it started, as the bench handler service does for Tock.

// errNoRedis is returned when redis-server is not on PATH; the Asynq peer is then skipped.
var errNoRedis = errors.New("redis-server not found on PATH: install redis-server (Debian package redis-server)")

const (
	// asynqTaskCheck is how long Asynq's processor sleeps when the queue is empty (Asynq's
	// default is 1 s, which alone would add 0.5–1.5 s to an idle server's lateness).
	asynqTaskCheck = 10 * time.Millisecond
	// asynqDelayedCheck is how often Asynq's forwarder moves due scheduled tasks to the
	// pending queue (Asynq's default is 5 s).
	asynqDelayedCheck = 100 * time.Millisecond
	// asynqQueue is the queue every task goes to.
	asynqQueue = "default"
)

// redisServer is a throwaway redis-server on a loopback port, its data in its own folder.
type redisServer struct {
	proc    *proc
	addr    string
	version string
	client  *redis.Client
}

// redisConfig is the server's configuration: persistence as in production (an append-only
// file fsynced once a second, plus Redis's default snapshots), loopback only.
const redisConfig = `bind 127.0.0.1
port %s
protected-mode yes
daemonize no
dir %s
logfile ""
appendonly yes
appendfsync everysec
maxmemory-policy noeviction
`

// startRedis starts redis-server with its data and log in dir. It returns errNoRedis when
// redis-server is not installed.
func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	bin, err := lookRedis()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var errs []error
	for range 3 { // a port found free can be taken before the server binds it
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, redisConfig, port, dir), 0o644); err != nil {
			return nil, err
		}
		p, err := startProc(dir, "redis-server", nil, nil, bin, conf)
		if err != nil {
			return nil, err
		}
		r := &redisServer{proc: p, addr: addr, client: redis.NewClient(&redis.Options{Addr: addr})}
		err = p.waitUntil(ctx, 30*time.Second, "answering PING", func(ctx context.Context) bool {
			return r.client.Ping(ctx).Err() == nil
		})
		if err == nil {
			r.version, err = r.serverVersion(ctx)
		}
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
		_ = r.stop()
	}
	return nil, fmt.Errorf("start redis-server: %w", errors.Join(errs...))
}

// lookRedis returns the path of redis-server, or errNoRedis.
func lookRedis() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errNoRedis
	}
	return bin, nil
}

// serverVersion returns redis_version from INFO.
func (r *redisServer) serverVersion(ctx context.Context) (string, error) {
	info, err := r.client.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("redis INFO: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "", errors.New("redis INFO: no redis_version")
}

// cpu returns the CPU time the server has used.
func (r *redisServer) cpu() time.Duration { return usageOf(r.proc.pid()).CPU }

// stop shuts the server down (SIGTERM: it flushes the append-only file and exits).
func (r *redisServer) stop() error {
	cerr := r.client.Close()
	return errors.Join(cerr, r.proc.stop(syscall.SIGTERM, 30*time.Second))
}

// moduleVersion returns the version of a module this program was built with, or "unknown".
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

// asynqRun is one run of the Asynq no-op handler.
type asynqRun struct {
	id, job string
	nominal int64 // Unix nanoseconds; 0 until the task's enqueue has been noted
	start   int64 // Unix nanoseconds
}

// asynqBook notes what the Asynq peer enqueued and ran. A run's nominal time comes from its
// task's enqueue: for a task of the scheduler, the instant the scheduler began enqueueing it
// (PreEnqueueFunc) rounded down to the schedule's period; for a task enqueued with
// ProcessAt, the time it was due.
type asynqBook struct {
	period time.Duration

	mu      sync.Mutex         // protects everything below
	pre     map[string][]int64 // job → nominal times of enqueues begun and not yet ended, oldest first
	lags    map[int64][]float64
	nominal map[string]int64 // task id → nominal time
	waiting map[string][]int // task id → runs that started before the enqueue ended
	runs    []asynqRun
	counts  map[int64]int // runs per nominal time
	errs    int           // failed enqueues
}

func newAsynqBook(period time.Duration) *asynqBook {
	return &asynqBook{period: period, pre: make(map[string][]int64), lags: make(map[int64][]float64),
		nominal: make(map[string]int64), waiting: make(map[string][]int), counts: make(map[int64]int)}
}

// preEnqueue notes that the scheduler begins to enqueue job's task at t.
func (b *asynqBook) preEnqueue(job string, t time.Time) {
	n := t.Truncate(b.period)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pre[job] = append(b.pre[job], n.UnixNano())
	b.lags[n.UnixNano()] = append(b.lags[n.UnixNano()], ms(t.Sub(n)))
}

// postEnqueue notes the end of the scheduler's enqueue of job's task, begun by the oldest
// pending preEnqueue of job.
func (b *asynqBook) postEnqueue(info *asynq.TaskInfo, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil || info == nil {
		b.errs++
		return
	}
	job := string(info.Payload)
	q := b.pre[job]
	if len(q) == 0 {
		b.errs++
		return
	}
	b.pre[job] = q[1:]
	b.setNominalLocked(info.ID, q[0])
}

// setNominal notes the nominal time of task id.
func (b *asynqBook) setNominal(id string, nominal time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setNominalLocked(id, nominal.UnixNano())
}

func (b *asynqBook) setNominalLocked(id string, nominal int64) {
	b.nominal[id] = nominal
	for _, i := range b.waiting[id] {
		b.runs[i].nominal = nominal
		b.counts[nominal]++
	}
	delete(b.waiting, id)
}

// run notes that task id of job started at start.
func (b *asynqBook) run(id, job string, start time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	nominal := b.nominal[id]
	b.runs = append(b.runs, asynqRun{id: id, job: job, nominal: nominal, start: start.UnixNano()})
	if nominal == 0 {
		b.waiting[id] = append(b.waiting[id], len(b.runs)-1)
		return
	}
	b.counts[nominal]++
}

// count returns how many runs have nominal times from from to to, inclusive.
func (b *asynqBook) count(from, to time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for nominal, c := range b.counts {
		if nominal >= from.UnixNano() && nominal <= to.UnixNano() {
			n += c
		}
	}
	return n
}

// runsOf returns the runs with nominal times from from to to, inclusive.
func (b *asynqBook) runsOf(from, to time.Time) []asynqRun {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []asynqRun
	for _, r := range b.runs {
		if r.nominal != 0 && r.nominal >= from.UnixNano() && r.nominal <= to.UnixNano() {
			out = append(out, r)
		}
	}
	return out
}

// startedBetween returns how many runs started at or after from and before to.
func (b *asynqBook) startedBetween(from, to time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range b.runs {
		if r.start >= from.UnixNano() && r.start < to.UnixNano() {
			n++
		}
	}
	return n
}

// enqueueLags returns, for the instants from from to to, how long after each instant the
// scheduler began enqueueing its tasks, in milliseconds.
func (b *asynqBook) enqueueLags(from, to time.Time) []float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []float64
	for nominal, l := range b.lags {
		if nominal >= from.UnixNano() && nominal <= to.UnixNano() {
			out = append(out, l...)
		}
	}
	return out
}

// enqueueErrors returns how many enqueues of the scheduler failed.
func (b *asynqBook) enqueueErrors() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.errs
}

// asynqPeer is a Redis server with an Asynq server on it whose handler "noop" does nothing
// but note when it started.
type asynqPeer struct {
	env   *Env
	dir   string
	redis *redisServer
	opt   asynq.RedisClientOpt
	srv   *asynq.Server
	insp  *asynq.Inspector
	book  *asynqBook
	log   *os.File
	quiet asynq.Logger
}

// startAsynq starts Redis in a folder of the run named name and an Asynq server with
// concurrency workers on it. period is the schedule's period, by which the book rounds
// enqueue times down to nominal times (0 when every task's nominal time is set explicitly).
func (e *Env) startAsynq(ctx context.Context, name string, concurrency int, period time.Duration) (p *asynqPeer, err error) {
	p = &asynqPeer{env: e, dir: filepath.Join(e.Dir, name), book: newAsynqBook(max(period, time.Nanosecond))}
	defer func() {
		if err != nil {
			_ = p.close()
		}
	}()
	e.statusf("setup "+name, "starting redis-server (appendonly yes, appendfsync everysec)")
	if p.redis, err = startRedis(ctx, p.dir); err != nil {
		return nil, err
	}
	if p.log, err = os.Create(filepath.Join(p.dir, "asynq.log")); err != nil {
		return nil, err
	}
	p.quiet = asynqLogger{log.New(p.log, "", log.LstdFlags|log.Lmicroseconds)}
	p.opt = asynq.RedisClientOpt{Addr: p.redis.addr, PoolSize: 64}
	e.statusf("setup "+name, "starting the Asynq server (concurrency %d)", concurrency)
	p.srv = asynq.NewServer(p.opt, asynq.Config{
		Concurrency:              concurrency,
		TaskCheckInterval:        asynqTaskCheck,
		DelayedTaskCheckInterval: asynqDelayedCheck,
		Queues:                   map[string]int{asynqQueue: 1},
		ShutdownTimeout:          10 * time.Second,
		Logger:                   p.quiet,
		LogLevel:                 asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(noopHandler, func(ctx context.Context, t *asynq.Task) error {
		start := time.Now()
		id, _ := asynq.GetTaskID(ctx)
		p.book.run(id, string(t.Payload()), start)
		return nil
	})
	if err := p.srv.Start(mux); err != nil {
		return nil, fmt.Errorf("start the Asynq server: %w", err)
	}
	p.insp = asynq.NewInspector(p.opt)
	return p, nil
}

// versions names the peer's versions for the notes.
func (p *asynqPeer) versions() string {
	return fmt.Sprintf("Asynq %s (github.com/hibiken/asynq) on Redis %s", moduleVersion("github.com/hibiken/asynq"), p.redis.version)
}

// drained reports whether the queue holds no pending, active or scheduled task: every run's
// completion has been written to Redis.
func (p *asynqPeer) drained() (bool, error) {
	info, err := p.insp.GetQueueInfo(asynqQueue)
	if err != nil {
		return false, fmt.Errorf("asynq queue info: %w", err)
	}
	return info.Pending+info.Active+info.Scheduled+info.Retry == 0, nil
}

// waitDrained polls the queue every 100 ms until it is drained or until deadline, and
// returns the time from since until it was drained (NaN when it was not).
func (p *asynqPeer) waitDrained(ctx context.Context, tag string, since, deadline time.Time) (float64, error) {
	lastStatus := time.Now()
	for {
		ok, err := p.drained()
		if err != nil {
			return 0, err
		}
		now := time.Now()
		if ok {
			return ms(now.Sub(since)), nil
		}
		if now.After(deadline) {
			return math.NaN(), nil
		}
		if now.Sub(lastStatus) >= time.Second {
			p.env.statusf(tag, "waiting for the queue to drain")
			lastStatus = now
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// close stops the Asynq server and Redis.
func (p *asynqPeer) close() error {
	var errs []error
	if p.srv != nil {
		p.srv.Shutdown()
	}
	if p.insp != nil {
		errs = append(errs, p.insp.Close())
	}
	if p.redis != nil {
		errs = append(errs, p.redis.stop())
	}
	if p.log != nil {
		errs = append(errs, p.log.Close())
	}
	return errors.Join(errs...)
}

// asynqUsage is the CPU used up to a moment by Redis and by this process, which runs the
// Asynq scheduler, server and handler.
type asynqUsage struct {
	at          time.Time
	redis, self time.Duration
}

func (p *asynqPeer) usage() asynqUsage {
	return asynqUsage{at: time.Now(), redis: p.redis.cpu(), self: usageOf(os.Getpid()).CPU}
}

// addUsage adds the CPU per handler run between a and b to r.
func (p *asynqPeer) addUsage(r *Result, a, b asynqUsage, valid bool) {
	runs := p.book.startedBetween(a.at, b.at)
	per := func(d time.Duration) float64 {
		if !valid || runs == 0 {
			return math.NaN()
		}
		return float64(d) / float64(time.Microsecond) / float64(runs)
	}
	r.add("redis_cpu", "redis-server CPU per fire", "µs", "", per(b.redis-a.redis))
	r.add("asynq_cpu", "Asynq scheduler, server and handler CPU per fire (this process)", "µs", "", per(b.self-a.self))
}

// asynqLogger writes Asynq's logs to the case's asynq.log.
type asynqLogger struct{ l *log.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Print(append([]any{"DEBUG "}, args...)...) }
func (a asynqLogger) Info(args ...any)  { a.l.Print(append([]any{"INFO "}, args...)...) }
func (a asynqLogger) Warn(args ...any)  { a.l.Print(append([]any{"WARN "}, args...)...) }
func (a asynqLogger) Error(args ...any) { a.l.Print(append([]any{"ERROR "}, args...)...) }

// Fatal logs and exits, as asynq.Logger requires.
func (a asynqLogger) Fatal(args ...any) {
	a.l.Print(append([]any{"FATAL "}, args...)...)
	os.Exit(1)
}
