package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// w7Exec is one execution (one attempt) as the database records it.
type w7Exec struct {
	id, state, retryOf, agent string
	attempt                   int
	seq                       int64 // the trigger's sequence number from its payload; -1 when unreadable
	started, finished         time.Time
}

// readW7Executions returns every execution of job from the case's database.
func readW7Executions(ctx context.Context, db *pgx.Conn, job string) ([]w7Exec, error) {
	rows, err := db.Query(ctx, `SELECT id, state, retry_of, agent_id, attempt, payload, started_at, finished_at
		FROM executions WHERE job = $1`, job)
	if err != nil {
		return nil, fmt.Errorf("read executions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (w7Exec, error) {
		var (
			e                 w7Exec
			payload           []byte
			started, finished *time.Time
		)
		if err := r.Scan(&e.id, &e.state, &e.retryOf, &e.agent, &e.attempt, &payload, &started, &finished); err != nil {
			return e, err
		}
		var p struct {
			Seq *int64 `json:"seq"`
		}
		e.seq = -1
		if json.Unmarshal(payload, &p) == nil && p.Seq != nil {
			e.seq = *p.Seq
		}
		if started != nil {
			e.started = *started
		}
		if finished != nil {
			e.finished = *finished
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read executions: %w", err)
	}
	return out, nil
}

// w7Check is what the database and the handler's records say about one repetition's work.
type w7Check struct {
	// attempts are the executions recorded; retried those with attempt > 1; lostAttempts
	// those that ended LOST (their lease ran out).
	attempts, retried, lostAttempts int
	// chains are the first attempts with their retries: one per trigger that created an
	// execution. lost: chains without a SUCCEEDED attempt, plus acknowledged executions
	// missing from the database. dupApplied: chains with more than one SUCCEEDED attempt.
	chains, lost, dupApplied int
	// unacked: chains created by a trigger whose calls all reported an error, or whose
	// first call did while its retry succeeded (the first had committed after all).
	// doubled: triggers (by the payload's sequence number) with more than one chain.
	unacked, doubled int
	// handlerRuns: runs in the handler's records; rerunAttempts: attempts the handler ran
	// more than once; rerunChains: chains the handler ran more than once in all (a retry
	// after a lost attempt that had started counts).
	handlerRuns, rerunAttempts, rerunChains int
}

// checkW7 matches the triggers, the executions and the handler's records.
func checkW7(trig []w7Trigger, execs []w7Exec, recs []handlerRecord) w7Check {
	var ck w7Check
	byID := make(map[string]*w7Exec, len(execs))
	children := map[string][]*w7Exec{}
	for i := range execs {
		e := &execs[i]
		byID[e.id] = e
		if e.retryOf != "" {
			children[e.retryOf] = append(children[e.retryOf], e)
		}
	}
	runs := make(map[string]int, len(recs))
	for _, r := range recs {
		runs[r.ID]++
	}
	ck.handlerRuns = len(recs)
	for _, n := range runs {
		if n > 1 {
			ck.rerunAttempts++
		}
	}
	acked := make(map[string]bool, len(trig))
	for _, t := range trig {
		if t.id == "" {
			continue
		}
		acked[t.id] = true
		if byID[t.id] == nil {
			ck.lost++
		}
	}
	chainsOf := map[int64]int{}
	for i := range execs {
		e := &execs[i]
		ck.attempts++
		if e.attempt > 1 {
			ck.retried++
		}
		if e.state == "lost" {
			ck.lostAttempts++
		}
		if e.retryOf != "" {
			continue
		}
		ck.chains++
		chainsOf[e.seq]++
		if !acked[e.id] {
			ck.unacked++
		}
		succeeded, ran := 0, 0
		for _, m := range chain(e, children) {
			if m.state == "succeeded" {
				succeeded++
			}
			ran += runs[m.id]
		}
		switch {
		case succeeded == 0:
			ck.lost++
		case succeeded > 1:
			ck.dupApplied++
		}
		if ran > 1 {
			ck.rerunChains++
		}
	}
	for _, n := range chainsOf {
		if n > 1 {
			ck.doubled += n - 1
		}
	}
	return ck
}

// chain returns first and every attempt that retries it, directly or not.
func chain(first *w7Exec, children map[string][]*w7Exec) []*w7Exec {
	out := []*w7Exec{first}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i].id]...)
	}
	return out
}

// Progress is counted in w7Bucket buckets of handler starts; a bucket is slow when the
// w7Window buckets ending with it hold fewer starts than half the offered rate would give.
const (
	w7Bucket = 100 * time.Millisecond
	w7Window = 5
)

// startBuckets counts the handler starts in each w7Bucket from start, n buckets.
func startBuckets(recs []handlerRecord, start time.Time, n int) []int {
	counts := make([]int, n)
	for _, r := range recs {
		b := int(time.Unix(0, r.Start).Sub(start) / w7Bucket)
		if r.Start >= start.UnixNano() && b < n {
			counts[b]++
		}
	}
	return counts
}

// longestSlow returns the longest run [from, to) of consecutive buckets within [lo, hi)
// whose trailing window of w buckets (the bucket and the w−1 before it) holds fewer than
// minStarts starts; from == to when there is none. The earliest such run wins a tie. Buckets
// before w−1 have no full window and are left out.
func longestSlow(counts []int, lo, hi, w int, minStarts float64) (from, to int) {
	lo, hi = max(lo, w-1, 0), min(hi, len(counts))
	run := lo
	for b := lo; b < hi; b++ {
		sum := 0
		for k := max(b-w+1, 0); k <= b; k++ {
			sum += counts[k]
		}
		if float64(sum) >= minStarts {
			run = b + 1
			continue
		}
		if b+1-run > to-from {
			from, to = run, b+1
		}
	}
	return from, to
}

// w7Timeline is one repetition's handler starts per bucket around the failure.
type w7Timeline struct {
	counts  []int
	failure int // the bucket the failure happened in
}

// writeW7Timeline writes the starts per bucket of every repetition of a case to
// W7-<case>-timeline.csv in dir: rep, the bucket's start relative to the failure (ms), starts.
func writeW7Timeline(dir, c string, reps []w7Timeline) error {
	rows := [][]string{{"rep", "ms_from_failure", "handler_starts"}}
	for i, tl := range reps {
		for b, n := range tl.counts {
			rows = append(rows, []string{strconv.Itoa(i + 1), strconv.FormatInt(int64(b-tl.failure)*w7Bucket.Milliseconds(), 10), strconv.Itoa(n)})
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeCSV(filepath.Join(dir, "W7-"+c+"-timeline.csv"), rows)
}
