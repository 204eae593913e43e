package dispatch

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/sqlite"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
)

// reportsSetup is a store with one assigned execution, and a batcher over it.
type reportsSetup struct {
	ctx     context.Context
	st      store.Store
	exec    store.Execution
	metrics *reportMetrics
	b       *reportBatcher
}

func setupReports(t *testing.T) *reportsSetup {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir()+"/tock.db")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	_, err = st.CreateJob(ctx, store.Job{Name: "nap", Handler: "sleep", Payload: []byte(`{}`)})
	require.NoError(t, err)
	_, err = st.CreateExecution(ctx, store.Execution{Job: "nap", Handler: "sleep"})
	require.NoError(t, err)
	claimed, err := st.ClaimExecutions(ctx, store.ClaimParams{
		Handlers: []string{"sleep"}, Limit: 1, Lease: time.Minute,
		Pick: func(c []store.Execution) []store.Assignment {
			return []store.Assignment{{ExecutionID: c[0].ID, AgentID: "agent-1"}}
		},
	})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	m := newReportMetrics(prometheus.NewRegistry())
	return &reportsSetup{ctx: ctx, st: st, exec: claimed[0], metrics: m,
		b: newReportBatcher(st, m, slog.New(slog.DiscardHandler), "agent-1")}
}

func (s *reportsSetup) progress(fraction float64, msg string) *agentv1.Progress {
	return &agentv1.Progress{ExecutionId: s.exec.ID, LeaseEpoch: s.exec.LeaseEpoch, Fraction: fraction, Message: msg}
}

func (s *reportsSetup) log(msg string) *agentv1.Log {
	return &agentv1.Log{ExecutionId: s.exec.ID, LeaseEpoch: s.exec.LeaseEpoch, Time: timestamppb.Now(), Level: "INFO", Message: msg}
}

func (s *reportsSetup) lines(t *testing.T) []string {
	t.Helper()
	lines, err := s.st.ListLogs(s.ctx, store.ListLogsParams{ExecutionID: s.exec.ID, Limit: store.MaxLogLinesPerExecution})
	require.NoError(t, err)
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Message
	}
	return out
}

// eventually polls cond until it holds, failing the test after 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, what)
}

func TestReportBatcher(t *testing.T) {
	t.Parallel()

	t.Run("WritesOnItsTick", func(t *testing.T) {
		t.Parallel()
		s := setupReports(t)
		s.b.start(s.ctx)
		defer s.b.stop()
		s.b.addProgress(s.progress(0.25, "a quarter"))
		s.b.addLog(s.log("first"))
		s.b.addProgress(s.progress(0.5, "half"))
		s.b.addLog(s.log("second"))
		eventually(t, "lines stored", func() bool { return len(s.lines(t)) == 2 })
		require.Equal(t, []string{"first", "second"}, s.lines(t))
		e, err := s.st.GetExecution(s.ctx, s.exec.ID)
		require.NoError(t, err)
		require.NotNil(t, e.Progress)
		require.Equal(t, "half", e.Progress.Message, "progress is coalesced: the last report wins")
		require.Equal(t, 1.0, counterValue(t, s.metrics.progress))
		require.Equal(t, 2.0, counterValue(t, s.metrics.logLines))
	})

	t.Run("StopWritesWhatIsLeft", func(t *testing.T) {
		t.Parallel()
		s := setupReports(t)
		ctx, cancel := context.WithCancel(s.ctx)
		s.b.start(ctx)
		s.b.addLog(s.log("before the end"))
		cancel() // the session ended: the last write runs under a context of its own
		s.b.stop()
		require.Equal(t, []string{"before the end"}, s.lines(t))
	})

	t.Run("FullBatchWritesAtOnce", func(t *testing.T) {
		t.Parallel()
		s := setupReports(t)
		s.b.start(s.ctx)
		defer s.b.stop()
		for i := range reportFlushSize {
			s.b.addLog(s.log("line " + strconv.Itoa(i)))
		}
		eventually(t, "a full batch stored", func() bool { return len(s.lines(t)) == reportFlushSize })
	})

	t.Run("FullBufferDrops", func(t *testing.T) {
		t.Parallel()
		s := setupReports(t) // not started: nothing drains the buffer
		for i := range reportBufferLimit + 3 {
			s.b.addLog(s.log("line " + strconv.Itoa(i)))
		}
		s.b.addProgress(s.progress(0.5, "dropped too"))
		require.Equal(t, 3.0, counterValue(t, s.metrics.dropped.WithLabelValues("log", dropQueueFull)))
		require.Equal(t, 1.0, counterValue(t, s.metrics.dropped.WithLabelValues("progress", dropQueueFull)))
		s.b.flush(s.ctx)
		require.Len(t, s.lines(t), reportBufferLimit)
	})

	t.Run("StaleEpochCounted", func(t *testing.T) {
		t.Parallel()
		s := setupReports(t)
		stale := s.log("old lease")
		stale.LeaseEpoch = s.exec.LeaseEpoch - 1
		s.b.addLog(stale)
		p := s.progress(0.1, "old lease")
		p.LeaseEpoch = s.exec.LeaseEpoch - 1
		s.b.addProgress(p)
		s.b.flush(s.ctx)
		require.Empty(t, s.lines(t))
		require.Equal(t, 1.0, counterValue(t, s.metrics.dropped.WithLabelValues("log", dropStaleEpoch)))
		require.Equal(t, 1.0, counterValue(t, s.metrics.dropped.WithLabelValues("progress", dropStaleEpoch)))
	})
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
