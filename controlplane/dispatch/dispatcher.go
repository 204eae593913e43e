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
	"go.opentelemetry.io/otel/trace"

	"github.com/tockhq/tock/controlplane/dbclock"
	"github.com/tockhq/tock/controlplane/discovery"
	"github.com/tockhq/tock/controlplane/retry"
	"github.com/tockhq/tock/controlplane/store"
)

// Config tunes a Dispatcher. Zero fields take the defaults given.
type Config struct {
	// ReplicaID names this replica in agent sessions and in the replica registry. Required.
	ReplicaID string
	// Address is where this replica's gRPC API answers, as registered with Replicas.
	// Default: none.
	Address string
	// Replicas is the replica registry agent ownership is decided over: this replica
	// registers itself there and owns the agents that rendezvous hashing gives it among the
	// live replicas. Nil means this replica is alone and owns every agent.
	Replicas discovery.Replicas
	// ReplicaTTL is how long this replica's registration lasts unless refreshed; it is
	// refreshed every ReplicaTTL/3. When a replica dies, its agents move after at most about
	// ReplicaTTL plus DiscoveryInterval. Default 5s.
	ReplicaTTL time.Duration
	// Clock is the database clock, which due times are on; timers are armed through it.
	// Default: a Clock over the store's Now, measured at start and every 30s.
	Clock *dbclock.Clock
	// Lease is how long an assignment lasts without a heartbeat. It should exceed ReplicaTTL
	// by a few seconds, so that the executions running on a dead replica's agents are taken
	// over with their agents rather than retried. Default 8s.
	Lease time.Duration
	// HeartbeatInterval is how often agents heartbeat. Default 1s.
	HeartbeatInterval time.Duration
	// PollInterval is how often the loop looks for pending work when nothing wakes it, for
	// work created by other replicas: due work is claimed, and the timer is armed for the
	// earliest work not yet due. Default 250ms.
	PollInterval time.Duration
	// DiscoveryInterval is how often the agent list and the live replica set are read.
	// Default 1s.
	DiscoveryInterval time.Duration
	// JanitorInterval is how often lapsed leases, and schedule-to-start and schedule-to-close
	// timeouts, are expired. Default 1s.
	JanitorInterval time.Duration
	// Lookahead is how long before its not-before time an execution may be assigned, when
	// an agent has room once due work is placed: the assignment carries its start time and
	// the SDK starts the handler then, so that a burst of work due at one instant (a cron
	// minute of many jobs) starts on time instead of queueing behind its claims. Negative
	// assigns due work only. Default 1s (tockd's --lookahead: 2s).
	Lookahead time.Duration
	// MaxBatch is the most executions claimed per transaction. Default 1000.
	MaxBatch int
	// DefaultTimeout bounds executions that have none. Default 1m.
	DefaultTimeout time.Duration
	// CancelResend is how long before an unanswered cancellation is sent again. Default 5s.
	CancelResend time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between session attempts.
	// Defaults 100ms and 5s.
	ReconnectMin, ReconnectMax time.Duration
	// TracerProvider makes the dispatch spans, in each execution's trace. Default: none.
	TracerProvider trace.TracerProvider
	// MirrorAgents records the agents this replica owns in the store's agent registry, for
	// a discovery source that does not keep them there (Consul), so that the API lists them.
	// Default false: the built-in registry keeps them there itself.
	MirrorAgents bool
	// Registerer receives the dispatcher's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger receives the dispatcher's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults(st store.Store) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReplicaTTL, 5*time.Second)
	def(&c.Lease, 8*time.Second)
	def(&c.HeartbeatInterval, time.Second)
	def(&c.PollInterval, 250*time.Millisecond)
	def(&c.DiscoveryInterval, time.Second)
	def(&c.JanitorInterval, time.Second)
	def(&c.DefaultTimeout, time.Minute)
	def(&c.CancelResend, 5*time.Second)
	def(&c.ReconnectMin, 100*time.Millisecond)
	def(&c.ReconnectMax, 5*time.Second)
	if c.Lookahead == 0 {
		c.Lookahead = time.Second
	}
	c.Lookahead = max(c.Lookahead, 0)
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.Clock == nil {
		c.Clock = dbclock.New(dbclock.Config{}, st.Now)
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
	members   *membership
	clock     *dbclock.Clock
	metrics   *metrics
	obs       *observer

	wake   chan struct{}
	resync chan struct{} // asks the discovery loop to reconcile now

	timersMu sync.Mutex // protects timers and armed
	timers   timeHeap   // database times at which the loop must look for due work
	armed    map[time.Time]struct{}

	sessionsMu sync.Mutex // protects sessions
	sessions   map[string]*session

	mirror  *mirror           // nil unless Config.MirrorAgents; used by the discovery loop
	knownMu sync.Mutex        // protects known
	known   []discovery.Agent // every agent discovery last listed, for placement
	// placeState is what placement remembers between claims; only the dispatch loop uses it.
	placeState placementState

	lifeMu  sync.Mutex // protects cancel, stopped and wg
	cancel  context.CancelFunc
	stopped bool
	wg      sync.WaitGroup
}

// New returns a Dispatcher that claims work from st and finds agents through disc.
func New(cfg Config, st store.Store, disc discovery.Discovery) *Dispatcher {
	cfg = cfg.withDefaults(st)
	self := discovery.Replica{ID: cfg.ReplicaID, Address: cfg.Address}
	d := &Dispatcher{
		cfg:       cfg,
		store:     st,
		discovery: disc,
		members:   newMembership(self, cfg.Replicas, cfg.ReplicaTTL, time.Now),
		clock:     cfg.Clock,
		metrics:   newMetrics(cfg.Registerer),
		wake:      make(chan struct{}, 1),
		resync:    make(chan struct{}, 1),
		armed:     make(map[time.Time]struct{}),
		sessions:  make(map[string]*session),
	}
	d.obs = newObserver(d)
	if cfg.MirrorAgents {
		// Records last as long as a replica's registration, at least three discovery reads.
		d.mirror = newMirror(max(cfg.ReplicaTTL, 3*cfg.DiscoveryInterval))
	}
	return d
}

// Start runs the dispatcher's loops in the background until Stop.
func (d *Dispatcher) Start(ctx context.Context) {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	if d.cancel != nil || d.stopped {
		return
	}
	ctx, d.cancel = context.WithCancel(ctx)
	loops := []func(context.Context){d.dispatchLoop, d.discoveryLoop, d.janitorLoop, d.clockLoop, d.obs.statsLoop}
	if d.cfg.Replicas != nil {
		loops = append(loops, d.registrationLoop)
	}
	for _, loop := range loops {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			loop(ctx)
		}()
	}
}

// Stop leaves the replica set first, so that the other replicas take this one's agents at
// once, then ends every loop and session and waits for them. It is idempotent.
func (d *Dispatcher) Stop() {
	d.lifeMu.Lock()
	cancel, stopped := d.cancel, d.stopped
	d.stopped = true
	d.lifeMu.Unlock()
	if cancel == nil || stopped {
		return
	}
	ctx, cancelLeave := context.WithTimeout(context.Background(), 5*time.Second)
	if err := d.members.leave(ctx); err != nil {
		d.cfg.Logger.Warn("deregister replica; its agents move when its registration lapses", "err", err)
	}
	cancelLeave()
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

// WakeAt makes the loop look for pending work due at t, a database time: Lookahead before
// it (or now, if that has passed). The timer is armed on the local clock through the
// measured offset.
func (d *Dispatcher) WakeAt(t time.Time) {
	t = t.Add(-d.cfg.Lookahead)
	if !t.After(d.clock.Now()) {
		d.Wake()
		return
	}
	d.timersMu.Lock()
	_, dup := d.armed[t]
	if !dup {
		d.armed[t] = struct{}{}
		heap.Push(&d.timers, t)
	}
	d.timersMu.Unlock()
	if !dup {
		d.Wake() // let the loop re-arm its timer
	}
}

// OnFires is a scheduler.FireFunc: it wakes the loop at each dispatched fire's not-before
// time.
func (d *Dispatcher) OnFires(fires []store.Fire) {
	for _, f := range fires {
		if f.Execution != nil {
			d.WakeAt(f.Execution.NotBefore)
		}
	}
}

// wakeForRetries arranges a look for work when the earliest backoff could have passed.
func (d *Dispatcher) wakeForRetries() {
	d.WakeAt(d.clock.Now().Add(retry.DefaultInitialBackoff))
}

// resyncNow makes the discovery loop read the replicas and agents now.
func (d *Dispatcher) resyncNow() {
	select {
	case d.resync <- struct{}{}:
	default:
	}
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

// nextTimer pops the timers that are due at database time now and returns the earliest one
// left.
func (d *Dispatcher) nextTimer(now time.Time) (time.Time, bool) {
	d.timersMu.Lock()
	defer d.timersMu.Unlock()
	for d.timers.Len() > 0 && !d.timers[0].After(now) {
		delete(d.armed, heap.Pop(&d.timers).(time.Time))
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
	look := true // arm the timer for work not yet due, at start and on each poll
	for {
		handlers := d.dispatchAll(ctx)
		d.sendCancels(ctx)
		if look {
			d.armForFutureWork(ctx, handlers)
		}
		if next, ok := d.nextTimer(d.clock.Now()); ok {
			timer.Reset(d.clock.Until(next))
		} else {
			timer.Reset(time.Hour)
		}
		look = false
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		case <-poll.C:
			look = true
		}
	}
}

// armForFutureWork arms the timer at the earliest not-before time of the pending executions
// this replica's agents can run. Work another replica created ahead of time (a fire claimed
// within the scheduler's horizon, a retry after its backoff) is thereby started on time here
// too, not at the next poll after it.
func (d *Dispatcher) armForFutureWork(ctx context.Context, handlers []string) {
	if len(handlers) == 0 {
		return
	}
	next, err := d.store.NextNotBefore(ctx, handlers)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("look for work not yet due", "err", err)
		}
		return
	}
	if !next.IsZero() {
		d.WakeAt(next)
	}
}

// dispatchAll claims and assigns work while agents have free capacity and work comes back.
// It returns the handlers the owned agents serve.
func (d *Dispatcher) dispatchAll(ctx context.Context) []string {
	var handlers []string
	for ctx.Err() == nil {
		n, full, hs := d.dispatchOnce(ctx)
		if handlers == nil {
			handlers = hs
		}
		if n == 0 || !full {
			break
		}
	}
	return handlers
}

// dispatchOnce runs one claim transaction. It returns how many executions it assigned,
// whether it claimed as many as it asked for (so more may be waiting), and the handlers of
// the agents it could assign to.
func (d *Dispatcher) dispatchOnce(ctx context.Context) (int, bool, []string) {
	owns := d.members.view()
	d.sessionsMu.Lock()
	var slots []slot
	byID := make(map[string]*session, len(d.sessions))
	handlerNames := map[string]struct{}{}
	for id, s := range d.sessions {
		// A session this replica no longer owns is about to be stopped; never assign to it.
		if !owns(id) {
			continue
		}
		sl, _ := s.snapshot()
		for h := range sl.handlers {
			handlerNames[h] = struct{}{}
		}
		if sl.id != "" { // ready, though maybe full: consistent hashing waits for it
			slots = append(slots, sl)
			byID[id] = s
		}
	}
	d.sessionsMu.Unlock()
	handlers := slices.Sorted(maps.Keys(handlerNames))
	free := 0
	ready := map[string]struct{}{}
	for _, s := range slots {
		if s.free <= 0 {
			continue
		}
		free += s.free
		for h := range s.handlers {
			ready[h] = struct{}{}
		}
	}
	if free <= 0 {
		return 0, false, handlers
	}
	limit := min(free, d.cfg.MaxBatch)
	place := d.startPlacement(slots, owns)
	claimed, err := d.store.ClaimExecutions(ctx, store.ClaimParams{
		Handlers:  slices.Sorted(maps.Keys(ready)),
		Limit:     claimWindow(limit, d.cfg.MaxBatch),
		Lease:     d.cfg.Lease,
		Lookahead: d.cfg.Lookahead,
		// Pick and FanOut may run more than once when the transaction is retried: each run
		// places afresh from the same state.
		Pick: func(candidates []store.Execution) []store.Assignment {
			place = d.startPlacement(slots, owns)
			return place.pick(candidates)
		},
		FanOut: place.fanOut,
	})
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Error("claim executions", "err", err)
		}
		return 0, false, handlers
	}
	if len(claimed) == 0 {
		return 0, false, handlers
	}
	d.commitPlacement(place)
	perAgent := make(map[string][]store.Execution)
	for _, e := range claimed {
		perAgent[e.AgentID] = append(perAgent[e.AgentID], e)
		// Work assigned ahead of its time waited for nothing.
		d.metrics.scheduleToStart.Observe(max(0, e.AssignedAt.Sub(e.NotBefore).Seconds()))
	}
	for id, execs := range perAgent {
		if s := byID[id]; s == nil || !s.assign(execs) {
			// The session went down after the claim committed: put the executions back
			// rather than wait for their leases to lapse.
			d.cfg.Logger.Warn("agent session lost before assignment was sent; releasing", "agent", id, "executions", len(execs))
			d.release(ctx, execs)
		}
	}
	d.metrics.assignments.Add(float64(len(claimed)))
	d.metrics.claimBatch.Observe(float64(len(claimed)))
	return len(claimed), len(claimed) >= limit, handlers
}

// release puts executions claimed but never sent back to pending. When that fails their
// leases lapse and the janitor retries them.
func (d *Dispatcher) release(ctx context.Context, execs []store.Execution) {
	refs := make([]store.ExecRef, len(execs))
	for i, e := range execs {
		refs[i] = store.ExecRef{ID: e.ID, Epoch: e.LeaseEpoch}
	}
	if err := d.store.ReleaseExecutions(ctx, refs); err != nil && ctx.Err() == nil {
		d.cfg.Logger.Warn("release unsent assignments; they are retried when their leases lapse", "err", err)
	}
	d.Wake()
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
		case <-d.resync:
		}
	}
}

// reconcile reads the live replicas and the agents, starts sessions with the agents this
// replica now owns and stops those with agents that are gone or owned elsewhere. When either
// list cannot be read, the last known one is kept.
func (d *Dispatcher) reconcile(ctx context.Context) {
	if err := d.members.refresh(ctx); err != nil && ctx.Err() == nil {
		d.cfg.Logger.Warn("list replicas; keeping the known set", "err", err)
	}
	d.metrics.replicas.Set(float64(len(d.members.liveSet())))
	agents, err := d.discovery.Agents(ctx)
	listed := err == nil
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("discover agents; keeping the known set", "err", err)
		}
		agents = d.knownAgents()
	} else {
		d.setKnownAgents(agents)
	}
	owns := d.members.view()
	want := make(map[string]discovery.Agent, len(agents))
	for _, a := range agents {
		if owns(a.ID) {
			want[a.ID] = a
		}
	}
	if d.mirror != nil && listed {
		if err := d.mirror.sync(ctx, d.store, want, agents, time.Now()); err != nil && ctx.Err() == nil {
			d.cfg.Logger.Warn("record discovered agents", "err", err)
		}
	}
	var stale []*session
	d.sessionsMu.Lock()
	for id, s := range d.sessions {
		a, ok := want[id]
		if !ok && owns(id) && (s.drainingWithWork() || s.live()) {
			// Gone from discovery because it drains (its health check fails once it
			// drains): keep its session while it finishes its work and reports the results.
			// Or its registration lapsed while its session is live, heartbeats and all (an
			// overloaded registry, a registration call that timed out): a session that
			// works is not given up for that; it ends when the agent falls silent.
			continue
		}
		if !ok || a.Address != s.agent.Address {
			stale = append(stale, s)
			delete(d.sessions, id)
		}
	}
	for id, a := range want {
		if _, ok := d.sessions[id]; !ok {
			s := newSession(d, a)
			d.sessions[id] = s
			s.start(ctx)
			d.cfg.Logger.Info("agent owned; opening session", "agent", id, "replicas", len(d.members.liveSet()))
		}
	}
	d.metrics.agentsOwned.Set(float64(len(d.sessions)))
	d.sessionsMu.Unlock()
	for _, s := range stale {
		d.cfg.Logger.Info("agent gone or owned by another replica; closing session", "agent", s.agent.ID)
		s.stop()
	}
}

// knownAgents returns the agents of the current sessions, the set kept when discovery fails.
func (d *Dispatcher) knownAgents() []discovery.Agent {
	d.sessionsMu.Lock()
	defer d.sessionsMu.Unlock()
	out := make([]discovery.Agent, 0, len(d.sessions))
	for _, s := range d.sessions {
		out = append(out, s.agent)
	}
	return out
}

// registrationLoop keeps this replica's registration alive: every ReplicaTTL/3, and sooner
// (every DiscoveryInterval/2 or so) while registering fails.
func (d *Dispatcher) registrationLoop(ctx context.Context) {
	every := d.cfg.ReplicaTTL / 3
	again := min(every, max(d.cfg.DiscoveryInterval/2, 100*time.Millisecond))
	t := time.NewTimer(0)
	defer t.Stop()
	registered := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.members.register(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.cfg.Logger.Warn("register replica", "replica", d.cfg.ReplicaID, "err", err)
			t.Reset(again)
			continue
		}
		if !registered {
			registered = true
			d.cfg.Logger.Info("replica registered", "replica", d.cfg.ReplicaID, "ttl", d.cfg.ReplicaTTL.String())
			d.resyncNow() // take this replica's agents now rather than at the next tick
		}
		t.Reset(every)
	}
}

// clockLoop measures the offset between the database clock and the local one.
func (d *Dispatcher) clockLoop(ctx context.Context) {
	var logged time.Duration
	d.clock.Run(ctx, func(offset, bound time.Duration, err error) {
		if err != nil {
			d.cfg.Logger.Warn("measure the database clock; keeping the last offset", "err", err)
			return
		}
		d.metrics.clockOffset.Set(offset.Seconds())
		if (offset - logged).Abs() > 50*time.Millisecond {
			logged = offset
			d.cfg.Logger.Info("database clock offset measured; timers account for it",
				"offset", offset.String(), "error_bound", bound.String())
		}
	})
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
		d.expireDeadlines(ctx)
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
				d.obs.lost(ctx, e)
			}
			d.wakeForRetries()
		}
	}
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
