package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

const (
	// w7MaxInFlight bounds the trigger calls in flight; a trigger due while that many are
	// outstanding is not sent, and counted.
	w7MaxInFlight = 2000
	// w7CallTimeout bounds each TriggerJob call.
	w7CallTimeout = 10 * time.Second
)

// w7Trigger is one trigger of the open-loop load and what came of it.
type w7Trigger struct {
	sent    time.Time // when the first call was sent, this process's clock
	id      string    // the execution, when a call succeeded
	calls   int       // TriggerJob calls made (a second one goes to the other replica)
	failed  int       // calls that returned an error
	err     error     // the last call's error when none succeeded
	notSent bool      // not sent: w7MaxInFlight calls were outstanding
}

// w7Load offers triggers of one job at a fixed rate, open loop (each is sent at its time
// whether or not the ones before have returned), spread over the replicas' APIs in turn. A
// trigger whose call fails is sent once more, to the next replica, when there are several;
// then every trigger carries a request id, so that a first call that committed before
// failing is not doubled.
type w7Load struct {
	env     *Env
	tag     string
	clients []tockv1.JobServiceClient
	job     string
	sleepMS int

	acked, failed atomic.Int64 // triggers with an execution; calls that failed
}

// offer sends rate triggers per second from start for d, and returns when every call has
// returned. Trigger i carries the payload {"ms": sleepMS, "seq": i}.
func (l *w7Load) offer(ctx context.Context, start time.Time, rate int, d time.Duration) ([]w7Trigger, error) {
	n := int(float64(rate) * d.Seconds())
	out := make([]w7Trigger, n)
	period := time.Second / time.Duration(rate)
	sem := make(chan struct{}, w7MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	lastStatus := start
	for i := range n {
		due := start.Add(time.Duration(i) * period)
		if err := sleepCtx(ctx, time.Until(due)); err != nil {
			return nil, err
		}
		if now := time.Now(); now.Sub(lastStatus) >= 5*time.Second {
			l.env.statusf(l.tag, "triggered %d/%d: %d executions created, %d calls failed", i, n, l.acked.Load(), l.failed.Load())
			lastStatus = now
		}
		select {
		case sem <- struct{}{}:
		default:
			out[i].notSent = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.trigger(ctx, i, &out[i])
		}()
	}
	return out, nil
}

// trigger makes trigger i's calls.
func (l *w7Load) trigger(ctx context.Context, i int, t *w7Trigger) {
	payload, err := structpb.NewValue(map[string]any{"ms": l.sleepMS, "seq": i})
	if err != nil {
		t.err = fmt.Errorf("payload: %w", err)
		return
	}
	t.sent = time.Now()
	for k := range len(l.clients) {
		r := (i + k) % len(l.clients)
		t.calls++
		cctx, cancel := context.WithTimeout(ctx, w7CallTimeout)
		req := &tockv1.TriggerJobRequest{Name: l.job, Payload: payload}
		if len(l.clients) > 1 {
			req.RequestId = fmt.Sprintf("seq-%d", i)
		}
		resp, err := l.clients[r].TriggerJob(cctx, req)
		cancel()
		if err == nil {
			t.id, t.err = resp.GetExecution().GetId(), nil
			l.acked.Add(1)
			return
		}
		t.failed++
		t.err = err
		l.failed.Add(1)
	}
}
