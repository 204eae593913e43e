package dispatch

import (
	"container/heap"
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tockhq/tock/controlplane/discovery"
	"github.com/tockhq/tock/controlplane/retry"
	"github.com/tockhq/tock/controlplane/store"
)

// Config tunes a Dispatcher. Zero fields take the defaults given.
type Config struct {
	// ReplicaID names this replica in agent sessions. Required.
	ReplicaID string
	// Lease is how long an assignment lasts without a heartbeat. Default 10s.
	Lease time.Duration
	// HeartbeatInterval is how often agents heartbeat. Default 1s.
	HeartbeatInterval time.Duration
	// PollInterval is how often the loop looks for pending work when nothing wakes it, for
	// work created by other replicas. Default 250ms.
	PollInterval time.Duration
	// DiscoveryInterval is how often the agent list is read. Default 1s.
	DiscoveryInterval time.Duration
	// JanitorInterval is how often lapsed leases are expired. Default 1s.
	JanitorInterval time.Duration
	// MaxBatch is the most executions claimed per transaction. Default 1000.
	MaxBatch int
	// DefaultTimeout bounds executions that have none. Default 1m.
	DefaultTimeout time.Duration
	// CancelResend is how long before an unanswered cancellation is sent again. Default 5s.
	CancelResend time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between session attempts.
	// Defaults 100ms and 5s.
	ReconnectMin, ReconnectMax time.Duration
	// Owns reports whether this replica owns an agent; default: every agent.
	Owns func(agentID string) bool
	// Registerer receives the dispatcher's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger receives the dispatcher's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Lease, 10*time.Second)
	def(&c.HeartbeatInterval, time.Second)
	def(&c.PollInterval, 250*time.Millisecond)
	def(&c.DiscoveryInterval, time.Second)
	def(&c.JanitorInterval, time.Second)
	def(&c.DefaultTimeout, time.Minute)
	def(&c.CancelResend, 5*time.Second)
	def(&c.ReconnectMin, 100*time.Millisecond)
	def(&c.ReconnectMax, 5*time.Second)
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.Owns == nil {
		c.Owns = func(string) bool { return true }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Dispatcher assigns pending executions to the agents this replica owns.
type Dispatcher struct {
	cfg       Config
	store     store.Store
	discovery discovery.Discovery
	metrics   *metrics

	wake chan struct{}

	timersMu sync.Mutex // protects timers
	timers   timeHeap   // times at which the loop must look for due work

	sessionsMu sync.Mutex // protects sessions
	sessions   map[string]*session

	lifeMu sync.Mutex // protects cancel and wg
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Dispatcher that claims work from st and finds agents through disc.
func New(cfg Config, st store.Store, disc discovery.Discovery) *Dispatcher {
	cfg = cfg.withDefaults()
	return &Dispatcher{
		cfg:       cfg,
		store:     st,
		discovery: disc,
		metrics:   newMetrics(cfg.Registerer),
		wake:      make(chan struct{}, 1),
		sessions:  make(map[string]*session),
	}
}

// Start runs the dispatcher's loops in the background until Stop.
func (d *Dispatcher) Start(ctx context.Context) {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	if d.cancel != nil {
		return
	}
	ctx, d.cancel = context.WithCancel(ctx)
	for _, loop := range []func(context.Context){d.dispatchLoop, d.discoveryLoop, d.janitorLoop} {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			loop(ctx)
		}()
	}
}

// Stop ends every loop and session and waits for them. It is idempotent.
func (d *Dispatcher) Stop() {
	d.lifeMu.Lock()
	cancel := d.cancel
	d.lifeMu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	d.wg.Wait()
	d.sessionsMu.Lock()
	sessions := slices.Collect(maps.Values(d.sessions))
	d.sessions = map[string]*session{}
	d.sessionsMu.Unlock()
	for _, s := range sessions {
		s.stop()
	}
}

// Wake makes the loop look for pending work now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// WakeAt makes the loop look for pending work at t (or now, if t has passed).
func (d *Dispatcher) WakeAt(t time.Time) {
	if !t.After(time.Now()) {
		d.Wake()
		return
	}
	d.timersMu.Lock()
	heap.Push(&d.timers, t)
	d.timersMu.Unlock()
	d.Wake() // let the loop re-arm its timer
}

// OnFires is a scheduler.FireFunc: it wakes the loop at each dispatched fire's not-before
// time.
func (d *Dispatcher) OnFires(fires []store.Fire) {
	seen := make(map[time.Time]struct{}, 1)
	for _, f := range fires {
		if f.Execution == nil {
			continue
		}
		t := f.Execution.NotBefore
		if _, ok := seen[t]; ok {
			continue
		}
		seen[t] = struct{}{}
		d.WakeAt(t)
	}
}

// wakeForRetries arranges a look for work when the earliest backoff could have passed.
func (d *Dispatcher) wakeForRetries() {
	d.WakeAt(time.Now().Add(retry.DefaultInitialBackoff))
}

// InFlight returns the executions each connected agent holds, by agent id.
func (d *Dispatcher) InFlight() map[string]int {
	d.sessionsMu.Lock()
	defer d.sessionsMu.Unlock()
	out := make(map[string]int, len(d.sessions))
	for id, s := range d.sessions {
		out[id] = s.inFlight()
	}
	return out
}

// Connected reports the ids of agents with a live session.
func (d *Dispatcher) Connected() map[string]bool {
	d.sessionsMu.Lock()
	defer d.sessionsMu.Unlock()
	out := make(map[string]bool, len(d.sessions))
	for id, s := range d.sessions {
		s.mu.Lock()
		out[id] = s.up
		s.mu.Unlock()
	}
	return out
}

// nextTimer pops the timers that are due and returns the earliest one left.
func (d *Dispatcher) nextTimer(now time.Time) (time.Time, bool) {
	d.timersMu.Lock()
	defer d.timersMu.Unlock()
	for d.timers.Len() > 0 && !d.timers[0].After(now) {
		heap.Pop(&d.timers)
	}
	if d.timers.Len() == 0 {
		return time.Time{}, false
	}
	return d.timers[0], true
}

func (d *Dispatcher) dispatchLoop(ctx context.Context) {
	poll := time.NewTicker(d.cfg.PollInterval)
	defer poll.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.dispatchAll(ctx)
		d.sendCancels(ctx)
		if next, ok := d.nextTimer(time.Now()); ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		case <-poll.C:
		}
	}
}

// dispatchAll claims and assigns work while agents have free capacity and work comes back.
func (d *Dispatcher) dispatchAll(ctx context.Context) {
	for ctx.Err() == nil {
		n, full := d.dispatchOnce(ctx)
		if n == 0 || !full {
			return
		}
	}
}

// dispatchOnce runs one claim transaction. It returns how many executions it assigned and
// whether it claimed as many as it asked for (so more may be waiting).
func (d *Dispatcher) dispatchOnce(ctx context.Context) (int, bool) {
	d.sessionsMu.Lock()
	var slots []slot
	byID := make(map[string]*session, len(d.sessions))
	for id, s := range d.sessions {
		if sl, ok := s.snapshot(); ok {
			slots = append(slots, sl)
			byID[id] = s
		}
	}
	d.sessionsMu.Unlock()
	if len(slots) == 0 {
		return 0, false
	}
	free := 0
	handlerNames := map[string]struct{}{}
	for _, s := range slots {
		free += s.free
		for h := range s.handlers {
			handlerNames[h] = struct{}{}
		}
	}
	limit := min(free, d.cfg.MaxBatch)
	slices.SortFunc(slots, func(a, b slot) int { return compareStrings(a.id, b.id) })
	claimed, err := d.store.ClaimExecutions(ctx, store.ClaimParams{
		Handlers: slices.Sorted(maps.Keys(handlerNames)),
		Limit:    limit,
		Lease:    d.cfg.Lease,
		Pick: func(candidates []store.Execution) []store.Assignment {
			return pickWLC(candidates, slots)
		},
	})
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Error("claim executions", "err", err)
		}
		return 0, false
	}
	if len(claimed) == 0 {
		return 0, false
	}
	perAgent := make(map[string][]store.Execution)
	for _, e := range claimed {
		perAgent[e.AgentID] = append(perAgent[e.AgentID], e)
		d.metrics.scheduleToStart.Observe(e.AssignedAt.Sub(e.NotBefore).Seconds())
	}
	for id, execs := range perAgent {
		if s := byID[id]; s == nil || !s.assign(execs) {
			// The session went down after the claim committed; the leases lapse and the
			// janitor retries these executions.
			d.cfg.Logger.Warn("agent session lost before assignment was sent", "agent", id, "executions", len(execs))
		}
	}
	d.metrics.assignments.Add(float64(len(claimed)))
	d.metrics.claimBatch.Observe(float64(len(claimed)))
	return len(claimed), len(claimed) == limit
}

// sendCancels forwards requested cancellations to the agents running them.
func (d *Dispatcher) sendCancels(ctx context.Context) {
	d.sessionsMu.Lock()
	ids := slices.Collect(maps.Keys(d.sessions))
	d.sessionsMu.Unlock()
	if len(ids) == 0 {
		return
	}
	refs, err := d.store.CancelRequested(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("list cancellations", "err", err)
		}
		return
	}
	for _, r := range refs {
		exec, err := d.store.GetExecution(ctx, r.ID)
		if err != nil {
			continue
		}
		d.sessionsMu.Lock()
		s := d.sessions[exec.AgentID]
		d.sessionsMu.Unlock()
		if s != nil {
			s.cancelExec(r, "cancel requested")
		}
	}
}

func (d *Dispatcher) discoveryLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.DiscoveryInterval)
	defer t.Stop()
	for {
		d.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcile starts sessions with newly discovered agents this replica owns and stops those
// with agents that are gone or owned elsewhere. When discovery fails, the known set is kept.
func (d *Dispatcher) reconcile(ctx context.Context) {
	agents, err := d.discovery.Agents(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("discover agents; keeping the known set", "err", err)
		}
		return
	}
	want := make(map[string]discovery.Agent, len(agents))
	for _, a := range agents {
		if d.cfg.Owns(a.ID) {
			want[a.ID] = a
		}
	}
	var stale []*session
	d.sessionsMu.Lock()
	for id, s := range d.sessions {
		if a, ok := want[id]; !ok || a.Address != s.agent.Address {
			stale = append(stale, s)
			delete(d.sessions, id)
		}
	}
	for id, a := range want {
		if _, ok := d.sessions[id]; !ok {
			s := newSession(d, a)
			d.sessions[id] = s
			s.start(ctx)
		}
	}
	d.sessionsMu.Unlock()
	for _, s := range stale {
		s.stop()
	}
}

func (d *Dispatcher) janitorLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lost, err := d.store.ExpireLeases(ctx, d.cfg.MaxBatch, retry.Plan)
		if err != nil {
			if ctx.Err() == nil {
				d.cfg.Logger.Warn("expire leases", "err", err)
			}
			continue
		}
		if len(lost) > 0 {
			d.metrics.leaseExpiries.Add(float64(len(lost)))
			for _, e := range lost {
				d.cfg.Logger.Warn("lease expired", "execution", e.ID, "job", e.Job, "agent", e.AgentID, "attempt", e.Attempt)
			}
			d.wakeForRetries()
		}
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// timeHeap is a min-heap of times.
type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
