package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tockhq/tock/controlplane/store"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

// Tuning of the report batcher.
const (
	// reportFlushInterval is how often buffered reports are written.
	reportFlushInterval = 250 * time.Millisecond
	// reportFlushSize is how many buffered reports make the batcher write at once.
	reportFlushSize = 500
	// reportBufferLimit is the most reports buffered; more are dropped (and counted) until the
	// next write, so that a flood of log lines cannot exhaust memory or slow the session down.
	reportBufferLimit = 10 * reportFlushSize
	// reportFinalTimeout bounds the last write when a session ends.
	reportFinalTimeout = 5 * time.Second
)

// Reasons a report is dropped, the values of the reason label.
const (
	dropQueueFull  = "queue_full"
	dropStoreError = "store_error"
	dropStaleEpoch = "stale_epoch"
	dropOverLimit  = "over_limit"
)

// reportMetrics count what becomes of the progress and log reports agents send.
type reportMetrics struct {
	logLines  prometheus.Counter
	truncated prometheus.Counter
	progress  prometheus.Counter
	dropped   *prometheus.CounterVec // by kind (log, progress) and reason
}

func newReportMetrics(reg prometheus.Registerer) *reportMetrics {
	m := &reportMetrics{
		logLines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_execution_log_lines_total",
			Help: "Handler log lines stored.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_execution_log_lines_truncated_total",
			Help: "Handler log lines stored cut to 8 KiB.",
		}),
		progress: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tock_execution_progress_updates_total",
			Help: "Progress reports recorded (after coalescing: the last of each execution per write).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tock_execution_reports_dropped_total",
			Help: "Progress reports and log lines not stored, by kind and reason: queue_full (the session's buffer was full), " +
				"store_error, stale_epoch (not the execution's current assignment) and over_limit (10,000 lines per execution).",
		}, []string{"kind", "reason"}),
	}
	for _, kind := range []string{"log", "progress"} {
		for _, reason := range []string{dropQueueFull, dropStoreError, dropStaleEpoch} {
			m.dropped.WithLabelValues(kind, reason)
		}
	}
	m.dropped.WithLabelValues("log", dropOverLimit)
	if reg != nil {
		reg.MustRegister(m.logLines, m.truncated, m.progress, m.dropped)
	}
	return m
}

// reportBatcher buffers one session's progress reports and log lines and writes them to the
// store in batches, off the session's reader: every reportFlushInterval, or at once when
// reportFlushSize are buffered. Progress is coalesced per execution (the last report wins);
// log lines are appended in one transaction per write. When the buffer holds
// reportBufferLimit reports, new ones are dropped and counted. Stopping it writes what is
// left, under a context of its own, within reportFinalTimeout.
type reportBatcher struct {
	st      store.Store
	metrics *reportMetrics
	log     *slog.Logger
	agentID string

	kick chan struct{}

	mu       sync.Mutex // protects progress and logs
	progress map[string]store.ProgressUpdate
	logs     []store.LogLine

	cancel context.CancelFunc
	done   chan struct{}
}

func newReportBatcher(st store.Store, m *reportMetrics, log *slog.Logger, agentID string) *reportBatcher {
	return &reportBatcher{
		st:       st,
		metrics:  m,
		log:      log,
		agentID:  agentID,
		kick:     make(chan struct{}, 1),
		progress: make(map[string]store.ProgressUpdate),
		done:     make(chan struct{}),
	}
}

// start runs the writer until stop.
func (b *reportBatcher) start(ctx context.Context) {
	ctx, b.cancel = context.WithCancel(ctx)
	go func() {
		defer close(b.done)
		b.run(ctx)
	}()
}

// stop writes what is buffered and ends the writer.
func (b *reportBatcher) stop() {
	b.cancel()
	<-b.done
}

func (b *reportBatcher) run(ctx context.Context) {
	t := time.NewTicker(reportFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportFinalTimeout)
			b.flush(final)
			cancel()
			return
		case <-t.C:
		case <-b.kick:
		}
		b.flush(ctx)
	}
}

// addProgress buffers a progress report; it never blocks.
func (b *reportBatcher) addProgress(p *agentv1.Progress) {
	u := store.ProgressUpdate{
		ExecRef:  store.ExecRef{ID: p.GetExecutionId(), Epoch: p.GetLeaseEpoch()},
		Fraction: p.GetFraction(),
		Message:  p.GetMessage(),
	}
	b.mu.Lock()
	_, coalesced := b.progress[u.ID]
	if !coalesced && len(b.progress)+len(b.logs) >= reportBufferLimit {
		b.mu.Unlock()
		b.metrics.dropped.WithLabelValues("progress", dropQueueFull).Inc()
		return
	}
	b.progress[u.ID] = u
	n := len(b.progress) + len(b.logs)
	b.mu.Unlock()
	b.kickAt(n)
}

// addLog buffers a log line; it never blocks.
func (b *reportBatcher) addLog(l *agentv1.Log) {
	line := store.LogLine{
		ExecRef: store.ExecRef{ID: l.GetExecutionId(), Epoch: l.GetLeaseEpoch()},
		Level:   l.GetLevel(),
		Message: l.GetMessage(),
	}
	if l.GetTime() != nil {
		line.Time = l.GetTime().AsTime()
	}
	b.mu.Lock()
	if len(b.progress)+len(b.logs) >= reportBufferLimit {
		b.mu.Unlock()
		b.metrics.dropped.WithLabelValues("log", dropQueueFull).Inc()
		return
	}
	b.logs = append(b.logs, line)
	n := len(b.progress) + len(b.logs)
	b.mu.Unlock()
	b.kickAt(n)
}

// kickAt wakes the writer when n reports make a full batch.
func (b *reportBatcher) kickAt(n int) {
	if n < reportFlushSize {
		return
	}
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// flush writes what is buffered: the progress reports in one transaction, the log lines in
// another.
func (b *reportBatcher) flush(ctx context.Context) {
	b.mu.Lock()
	progress, logs := b.progress, b.logs
	if len(progress) > 0 {
		b.progress = make(map[string]store.ProgressUpdate, len(progress))
	}
	b.logs = nil
	b.mu.Unlock()

	if len(progress) > 0 {
		updates := make([]store.ProgressUpdate, 0, len(progress))
		for _, u := range progress {
			updates = append(updates, u)
		}
		applied, err := b.st.RecordProgress(ctx, updates)
		if err != nil {
			b.metrics.dropped.WithLabelValues("progress", dropStoreError).Add(float64(len(updates)))
			b.log.WarnContext(ctx, "record progress; reports dropped", "agent", b.agentID, "reports", len(updates), "err", err)
		} else {
			b.metrics.progress.Add(float64(applied))
			b.metrics.dropped.WithLabelValues("progress", dropStaleEpoch).Add(float64(len(updates) - applied))
		}
	}
	if len(logs) > 0 {
		res, err := b.st.AppendLogs(ctx, logs)
		if err != nil {
			b.metrics.dropped.WithLabelValues("log", dropStoreError).Add(float64(len(logs)))
			b.log.WarnContext(ctx, "append log lines; lines dropped", "agent", b.agentID, "lines", len(logs), "err", err)
			return
		}
		b.metrics.logLines.Add(float64(res.Appended))
		b.metrics.truncated.Add(float64(res.Truncated))
		b.metrics.dropped.WithLabelValues("log", dropStaleEpoch).Add(float64(res.Rejected))
		b.metrics.dropped.WithLabelValues("log", dropOverLimit).Add(float64(res.OverLimit))
	}
}
