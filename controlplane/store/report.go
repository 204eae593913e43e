package store

import "time"

// Limits on what handlers report, enforced by every store.
const (
	// MaxLogLinesPerExecution is the most log lines kept per execution (all its lease epochs
	// together); lines beyond it are dropped and counted.
	MaxLogLinesPerExecution = 10000
	// MaxLogLineBytes is the longest log message kept; longer ones are cut at a UTF-8
	// boundary (see TruncateLogMessage) and counted.
	MaxLogLineBytes = 8 << 10
	// MaxProgressMessageBytes is the longest progress message kept; longer ones are cut.
	MaxProgressMessageBytes = 1 << 10
)

// Progress is how far an execution has come, as its handler last reported.
type Progress struct {
	// Fraction done, from 0 to 1.
	Fraction float64
	// Message is a short status text.
	Message string
	// UpdatedAt is when the store recorded it (database clock).
	UpdatedAt time.Time
}

// ProgressUpdate is one progress report of an agent.
type ProgressUpdate struct {
	// ID and Epoch name the assignment the report is for.
	ExecRef
	// Fraction done, from 0 to 1; values outside are clamped.
	Fraction float64
	// Message is a short status text.
	Message string
}

// LogLine is one log line a handler wrote.
type LogLine struct {
	// ID and Epoch name the assignment that wrote it.
	ExecRef
	// LineID is the line's id, a UUIDv7 the store generates; lines of one execution sort by
	// it in the order they were stored.
	LineID string
	// Time is when the handler wrote it (the agent's clock).
	Time time.Time
	// Level is the severity, such as "INFO".
	Level string
	// Message is the text.
	Message string
}

// AppendLogsResult counts what AppendLogs did with the lines it was given.
type AppendLogsResult struct {
	// Appended lines were stored.
	Appended int
	// Truncated lines were stored cut to MaxLogLineBytes.
	Truncated int
	// OverLimit lines were dropped because their execution has MaxLogLinesPerExecution.
	OverLimit int
	// Rejected lines were dropped because their execution does not exist or its lease epoch
	// is not theirs.
	Rejected int
}

// ListLogsParams selects a page of an execution's log lines.
type ListLogsParams struct {
	// ExecutionID is the execution.
	ExecutionID string
	// After is the LineID of the last line of the previous page; empty for the first page.
	After string
	// Limit is the most lines returned; 0 means 100.
	Limit int
}

// PendingStats describes the executions waiting for an agent.
type PendingStats struct {
	// Due counts the PENDING executions whose NotBefore has passed.
	Due int
	// OldestDue is the earliest NotBefore among them; zero when there are none.
	OldestDue time.Time
	// Now is the database clock when they were counted.
	Now time.Time
}

// TruncateLogMessage cuts msg to at most max bytes without splitting a UTF-8 sequence, and
// reports whether it cut.
func TruncateLogMessage(msg string, max int) (string, bool) {
	if len(msg) <= max {
		return msg, false
	}
	cut := max
	// Back up over continuation bytes (10xxxxxx) to the start of the rune that crosses max.
	for cut > 0 && msg[cut]&0xC0 == 0x80 {
		cut--
	}
	return msg[:cut], true
}

// ClampFraction keeps a progress fraction within [0, 1]; NaN is 0.
func ClampFraction(f float64) float64 {
	switch {
	case f != f || f < 0:
		return 0
	case f > 1:
		return 1
	}
	return f
}

// GroupLogs splits lines by execution, keeping their order, and returns the executions' ids
// in the order they first appear. Stores use it in AppendLogs.
func GroupLogs(lines []LogLine) ([]string, map[string][]LogLine) {
	var ids []string
	by := make(map[string][]LogLine)
	for _, l := range lines {
		if _, ok := by[l.ID]; !ok {
			ids = append(ids, l.ID)
		}
		by[l.ID] = append(by[l.ID], l)
	}
	return ids, by
}

// AdmitLogs decides which of one execution's lines a store keeps, given the execution's
// current lease epoch and how many lines it holds already: lines of another epoch are
// rejected, lines beyond MaxLogLinesPerExecution are dropped, and messages longer than
// MaxLogLineBytes are cut. It adds to res what it decided and returns the lines to store, with
// a zero Time replaced by now.
func AdmitLogs(lines []LogLine, epoch int64, have int, now time.Time, res *AppendLogsResult) []LogLine {
	keep := make([]LogLine, 0, len(lines))
	for _, l := range lines {
		switch {
		case l.Epoch != epoch:
			res.Rejected++
			continue
		case have+len(keep) >= MaxLogLinesPerExecution:
			res.OverLimit++
			continue
		}
		var cut bool
		if l.Message, cut = TruncateLogMessage(l.Message, MaxLogLineBytes); cut {
			res.Truncated++
		}
		if l.Time.IsZero() {
			l.Time = now
		}
		keep = append(keep, l)
	}
	res.Appended += len(keep)
	return keep
}
