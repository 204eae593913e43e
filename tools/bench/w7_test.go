package main

import (
	"testing"
	"time"
)

func TestLongestSlow(t *testing.T) {
	// 10 starts per bucket, a stop of 6 buckets from bucket 10, then a catch-up.
	counts := make([]int, 30)
	for i := range counts {
		counts[i] = 10
	}
	for i := 10; i < 16; i++ {
		counts[i] = 0
	}
	counts[16] = 60
	// Half the rate over a 5-bucket window is 25 starts: the window falls below it once
	// three of its buckets are empty, and the catch-up lifts it at once.
	from, to := longestSlow(counts, 10, 30, 5, 25)
	if from != 12 || to != 16 {
		t.Fatalf("longestSlow = [%d, %d), want [12, 16)", from, to)
	}
	if from, to := longestSlow(counts, 0, 10, 5, 25); from != to {
		t.Fatalf("a steady rate has a slow run [%d, %d)", from, to)
	}
	// Bounds are clamped to the buckets with a full window.
	if from, to := longestSlow([]int{0, 0, 0}, -5, 99, 2, 1); from != 1 || to != 3 {
		t.Fatalf("longestSlow of zeros = [%d, %d), want [1, 3)", from, to)
	}
}

func TestCheckW7(t *testing.T) {
	at := time.Unix(1000, 0)
	execs := []w7Exec{
		{id: "a", state: "succeeded", attempt: 1, seq: 0, started: at},
		{id: "b", state: "lost", attempt: 1, seq: 1, started: at},
		{id: "b2", state: "succeeded", attempt: 2, retryOf: "b", seq: 1, started: at},
		{id: "c", state: "lost", attempt: 1, seq: 2},
		{id: "c2", state: "pending", attempt: 2, retryOf: "c", seq: 2},
		{id: "d", state: "succeeded", attempt: 1, seq: 3},
		{id: "d2", state: "succeeded", attempt: 1, seq: 3}, // a retried call whose first had committed
	}
	trig := []w7Trigger{{id: "a"}, {id: "b"}, {id: "c"}, {id: "d2"}, {id: "missing"}, {}}
	recs := []handlerRecord{{ID: "a"}, {ID: "b"}, {ID: "b2"}, {ID: "d"}, {ID: "d2"}, {ID: "d2"}}
	ck := checkW7(trig, execs, recs)
	want := w7Check{
		attempts: 7, retried: 2, lostAttempts: 2,
		chains: 5, lost: 2, dupApplied: 0,
		unacked: 1, doubled: 1,
		handlerRuns: 6, rerunAttempts: 1, rerunChains: 2,
	}
	if ck != want {
		t.Fatalf("checkW7 = %+v, want %+v", ck, want)
	}
}
