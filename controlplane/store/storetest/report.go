package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

// progress reports one progress update and returns how many the store applied.
func (b *bundle) progress(t *testing.T, r store.ExecRef, fraction float64, msg string) int {
	t.Helper()
	n, err := b.st.RecordProgress(b.ctx, []store.ProgressUpdate{{ExecRef: r, Fraction: fraction, Message: msg}})
	require.NoError(t, err)
	return n
}

// logLines returns n lines of the assignment r, numbered from first.
func logLines(r store.ExecRef, first, n int, at time.Time) []store.LogLine {
	lines := make([]store.LogLine, n)
	for i := range lines {
		lines[i] = store.LogLine{ExecRef: r, Time: at.Add(time.Duration(i) * time.Millisecond), Level: "INFO", Message: fmt.Sprintf("line %d", first+i)}
	}
	return lines
}

// appendLogs appends lines and returns what the store did.
func (b *bundle) appendLogs(t *testing.T, lines []store.LogLine) store.AppendLogsResult {
	t.Helper()
	res, err := b.st.AppendLogs(b.ctx, lines)
	require.NoError(t, err)
	return res
}

// allLogs lists every line of an execution, page by page.
func (b *bundle) allLogs(t *testing.T, id string, page int) []store.LogLine {
	t.Helper()
	var out []store.LogLine
	after := ""
	for {
		lines, err := b.st.ListLogs(b.ctx, store.ListLogsParams{ExecutionID: id, After: after, Limit: page})
		require.NoError(t, err)
		out = append(out, lines...)
		if len(lines) < page {
			return out
		}
		after = lines[len(lines)-1].LineID
	}
}

func messages(lines []store.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Message
	}
	return out
}

var reportTests = []test{
	{"ProgressLastWins", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		require.Nil(t, e.Progress, "no progress before the handler reports")
		before := b.now(t)
		n, err := b.st.RecordProgress(b.ctx, []store.ProgressUpdate{
			{ExecRef: ref(e), Fraction: 0.25, Message: "a quarter"},
			{ExecRef: ref(e), Fraction: 0.5, Message: "half"},
		})
		require.NoError(t, err)
		require.Equal(t, 2, n)
		got := b.get(t, e.ID).Progress
		require.NotNil(t, got)
		require.Equal(t, 0.5, got.Fraction)
		require.Equal(t, "half", got.Message)
		require.False(t, got.UpdatedAt.Before(before), "the database clock dates it")
		require.False(t, got.UpdatedAt.After(b.now(t)))

		require.Equal(t, 1, b.progress(t, ref(e), 7, "over"))
		require.Equal(t, 1.0, b.get(t, e.ID).Progress.Fraction, "fractions are clamped")
		require.Equal(t, 1, b.progress(t, ref(e), -1, "under"))
		require.Equal(t, 0.0, b.get(t, e.ID).Progress.Fraction)
	}},
	{"ProgressNeedsCurrentEpoch", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		stale := store.ExecRef{ID: e.ID, Epoch: e.LeaseEpoch - 1}
		require.Zero(t, b.progress(t, stale, 0.9, "stale"))
		require.Nil(t, b.get(t, e.ID).Progress)
		require.Zero(t, b.progress(t, store.ExecRef{ID: "0190f3a1-7c2b-7d4e-8f00-0000000000ff", Epoch: 1}, 0.5, "unknown"))
	}},
	{"ProgressAfterResult", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecSucceeded}, mustNotRetry(t))
		require.True(t, out.Applied)
		require.Equal(t, 1, b.progress(t, ref(e), 1, "done"), "a report that arrives after the result still counts")
		got := b.get(t, e.ID)
		require.Equal(t, store.ExecSucceeded, got.State)
		require.Equal(t, "done", got.Progress.Message)
	}},
	{"ProgressLongMessageCut", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		require.Equal(t, 1, b.progress(t, ref(e), 0.1, strings.Repeat("é", store.MaxProgressMessageBytes)))
		msg := b.get(t, e.ID).Progress.Message
		require.LessOrEqual(t, len(msg), store.MaxProgressMessageBytes)
		require.True(t, utf8.ValidString(msg))
	}},
	{"ProgressNotCopied", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		created := b.createExec(t, job, func(e *store.Execution) {
			e.Progress = &store.Progress{Fraction: 0.5, Message: "made up"}
		})
		require.Nil(t, created.Progress, "CreateExecution ignores progress")
		e := b.claim(t, "agent-1", 1, time.Minute, job.Handler)[0]
		require.Equal(t, 1, b.progress(t, ref(e), 0.5, "half"))
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecFailed, Error: &store.ExecError{Message: "no", Retryable: true}}, retryAfter(0))
		require.NotEmpty(t, out.RetryID)
		require.Nil(t, b.get(t, out.RetryID).Progress, "a retry starts without progress")
		require.Equal(t, e.TraceContext, b.get(t, out.RetryID).TraceContext, "a retry keeps the trace")
	}},
	{"LogsAppendAndPage", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		empty, err := b.st.ListLogs(b.ctx, store.ListLogsParams{ExecutionID: e.ID})
		require.NoError(t, err)
		require.Empty(t, empty)

		at := b.now(t).Add(-time.Second)
		res := b.appendLogs(t, logLines(ref(e), 0, 5, at))
		require.Equal(t, store.AppendLogsResult{Appended: 5}, res)
		res = b.appendLogs(t, logLines(ref(e), 5, 2, at.Add(time.Second)))
		require.Equal(t, store.AppendLogsResult{Appended: 2}, res)

		lines := b.allLogs(t, e.ID, 3)
		require.Equal(t, []string{"line 0", "line 1", "line 2", "line 3", "line 4", "line 5", "line 6"}, messages(lines))
		for i, l := range lines {
			require.Equal(t, e.ID, l.ID)
			require.Equal(t, e.LeaseEpoch, l.Epoch)
			require.Equal(t, "INFO", l.Level)
			require.NotEmpty(t, l.LineID)
			if i > 0 {
				require.Less(t, lines[i-1].LineID, l.LineID)
			}
		}
		requireTime(t, at, lines[0].Time, "the handler's time is kept")
	}},
	{"LogsNeedCurrentEpoch", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		stale := store.ExecRef{ID: e.ID, Epoch: e.LeaseEpoch + 1}
		unknown := store.ExecRef{ID: "0190f3a1-7c2b-7d4e-8f00-0000000000ff", Epoch: 1}
		lines := append(logLines(ref(e), 0, 1, b.now(t)), logLines(stale, 1, 2, b.now(t))...)
		lines = append(lines, logLines(unknown, 3, 1, b.now(t))...)
		res := b.appendLogs(t, lines)
		require.Equal(t, store.AppendLogsResult{Appended: 1, Rejected: 3}, res)
		require.Equal(t, []string{"line 0"}, messages(b.allLogs(t, e.ID, 100)))
	}},
	{"LogsAfterResult", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		out := b.complete(t, store.Completion{ExecRef: ref(e), State: store.ExecSucceeded}, mustNotRetry(t))
		require.True(t, out.Applied)
		res := b.appendLogs(t, logLines(ref(e), 0, 2, time.Time{}))
		require.Equal(t, 2, res.Appended, "lines of the current epoch count in any state")
		lines := b.allLogs(t, e.ID, 100)
		require.Len(t, lines, 2)
		require.False(t, lines[0].Time.IsZero(), "a line without a time gets the database's")
	}},
	{"LogsCutAndCapped", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		long := logLines(ref(e), 0, 1, b.now(t))
		long[0].Message = "x" + strings.Repeat("€", store.MaxLogLineBytes)
		res := b.appendLogs(t, long)
		require.Equal(t, store.AppendLogsResult{Appended: 1, Truncated: 1}, res)
		got := b.allLogs(t, e.ID, 10)[0].Message
		require.LessOrEqual(t, len(got), store.MaxLogLineBytes)
		require.True(t, utf8.ValidString(got), "cut at a rune boundary")
		require.True(t, strings.HasPrefix(got, "x€€"))

		res = b.appendLogs(t, logLines(ref(e), 1, store.MaxLogLinesPerExecution-2, b.now(t)))
		require.Equal(t, store.MaxLogLinesPerExecution-2, res.Appended)
		res = b.appendLogs(t, logLines(ref(e), 0, 3, b.now(t)))
		require.Equal(t, store.AppendLogsResult{Appended: 1, OverLimit: 2}, res)
		lines, err := b.st.ListLogs(b.ctx, store.ListLogsParams{ExecutionID: e.ID, Limit: store.MaxLogLinesPerExecution + 10})
		require.NoError(t, err)
		require.Len(t, lines, store.MaxLogLinesPerExecution)
	}},
	{"LogsOfUnknownExecution", func(t *testing.T, b *bundle) {
		_, err := b.st.ListLogs(b.ctx, store.ListLogsParams{ExecutionID: "0190f3a1-7c2b-7d4e-8f00-0000000000ff"})
		require.ErrorIs(t, err, store.ErrNotFound)
	}},
	{"LogsDeletedWithJob", func(t *testing.T, b *bundle) {
		job := b.createJob(t, newJob("work"))
		e := b.claimOne(t, job, "agent-1", time.Minute)
		require.Equal(t, 2, b.appendLogs(t, logLines(ref(e), 0, 2, b.now(t))).Appended)
		require.NoError(t, b.st.DeleteJob(b.ctx, job.Name))
		_, err := b.st.ListLogs(b.ctx, store.ListLogsParams{ExecutionID: e.ID})
		require.ErrorIs(t, err, store.ErrNotFound)
	}},
	{"PendingStats", func(t *testing.T, b *bundle) {
		st, err := b.st.PendingStats(b.ctx)
		require.NoError(t, err)
		require.Zero(t, st.Due)
		require.True(t, st.OldestDue.IsZero())

		job := b.createJob(t, newJob("work"))
		now := b.now(t)
		oldest := now.Add(-time.Minute)
		b.createExec(t, job, func(e *store.Execution) { e.NotBefore = oldest })
		b.createExec(t, job, func(e *store.Execution) { e.NotBefore = now.Add(-time.Second) })
		b.createExec(t, job, func(e *store.Execution) { e.NotBefore = now.Add(time.Hour) })
		assigned := b.createExec(t, job, func(e *store.Execution) { e.NotBefore = now.Add(-2 * time.Minute); e.Priority = 9 })
		claimed, err := b.st.ClaimExecutions(b.ctx, store.ClaimParams{
			Handlers: []string{job.Handler}, Limit: 1, Lease: time.Minute, Pick: pickAll("agent-1"),
		})
		require.NoError(t, err)
		require.Equal(t, []string{assigned.ID}, ids(claimed))

		st, err = b.st.PendingStats(b.ctx)
		require.NoError(t, err)
		require.Equal(t, 2, st.Due, "due pending executions only")
		requireTime(t, oldest, st.OldestDue)
		require.False(t, st.Now.Before(now))
	}},
}
