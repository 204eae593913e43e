package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/agent"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"github.com/tockhq/tock/sdk-go/worker"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestHello(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	_, hello := e.connect(1)
	require.Equal(t, "agent-1", hello.GetAgentId())
	require.Equal(t, "billing", hello.GetService())
	require.Equal(t, map[string]string{"zone": "eu-1"}, hello.GetLabels())
	require.EqualValues(t, 2, hello.GetWeight())
	require.EqualValues(t, 4, hello.GetCapacity())
	require.Equal(t, []string{"block", "chatty", "echo", "fail", "info", "trace", "wait"}, hello.GetHandlers())
	require.Empty(t, hello.GetRunning())
	require.Equal(t, agent.Version, hello.GetVersion())
	require.False(t, hello.GetDraining())
}

func TestFirstMessageMustBeOpen(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	stream, err := agentv1.NewAgentServiceClient(e.conn).Connect(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Ack{Ack: &agentv1.Ack{}}}))
	_, err = stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestEchoRoundTrip(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)

	before := time.Now()
	asg := assignment("exec-1", "echo", 3)
	asg.Payload = []byte(`{"hello":"world"}`)
	asg.ContentType = "application/json"
	r.assign(asg)

	started := r.started()
	require.Equal(t, []string{"exec-1"}, ids(started.GetExecutions()))
	require.EqualValues(t, 3, started.GetExecutions()[0].GetLeaseEpoch())
	require.NotNil(t, started.GetTime())

	res := r.result("exec-1")
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, res.GetOutcome())
	require.EqualValues(t, 3, res.GetLeaseEpoch())
	require.JSONEq(t, `{"hello":"world"}`, string(res.GetOutput()))
	require.Equal(t, "application/json", res.GetContentType())
	require.Nil(t, res.GetError())
	require.False(t, res.GetStartTime().AsTime().Before(before.Truncate(time.Microsecond)))
	require.False(t, res.GetFinishTime().AsTime().Before(res.GetStartTime().AsTime()))

	require.Equal(t, 1, e.agent.PendingResults())
	r.ack(res)
	require.Eventually(t, func() bool { return e.agent.PendingResults() == 0 }, waitFor, tick)
	require.Equal(t, 0, e.agent.Running())
}

func TestAssignmentFieldsReachTheHandler(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)

	nominal := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	r.assign(&agentv1.Assignment{
		ExecutionId:  "exec-info",
		Job:          "nightly",
		Handler:      "info",
		Attempt:      2,
		LeaseEpoch:   9,
		NominalTime:  timestamppb.New(nominal),
		Deadline:     timestamppb.New(deadline),
		Payload:      []byte("raw"),
		ContentType:  "text/plain",
		ShardIndex:   1,
		ShardTotal:   3,
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	})
	res := r.result("exec-info")
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, res.GetOutcome())
	var got worker.Execution
	require.NoError(t, json.Unmarshal(res.GetOutput(), &got))
	require.Equal(t, worker.Execution{
		ID:          "exec-info",
		Job:         "nightly",
		Handler:     "info",
		Attempt:     2,
		NominalTime: nominal,
		LeaseEpoch:  9,
		ShardIndex:  1,
		ShardTotal:  3,
		Deadline:    deadline,
		ContentType: "text/plain",
	}, got)
}

func TestFailedResultCopiesError(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	r.assign(assignment("exec-fail", "fail", 1))
	res := r.result("exec-fail")
	require.Equal(t, agentv1.Outcome_OUTCOME_FAILED, res.GetOutcome())
	require.Equal(t, "always fails", res.GetError().GetMessage())
	require.Equal(t, "Deliberate", res.GetError().GetKind())
	require.False(t, res.GetError().GetRetryable())
	require.Equal(t, 3*time.Second, res.GetError().GetRetryAfter().AsDuration())
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *agent.Config) { c.Capacity = 2 })
	e.waitHealthy()
	r, hello := e.connect(1)
	require.EqualValues(t, 2, hello.GetCapacity())

	r.assign(assignment("b1", "block", 1), assignment("b2", "block", 1), assignment("b3", "block", 1))
	require.Equal(t, []string{"b1", "b2"}, ids(r.started().GetExecutions()))
	rel := r.released()
	require.Equal(t, agent.ReasonAtCapacity, rel.GetReason())
	require.Equal(t, []string{"b3"}, ids(rel.GetExecutions()))
	require.Equal(t, 2, e.agent.Running())

	// Heartbeats carry the running executions.
	hb := r.heartbeat(func(hb *agentv1.Heartbeat) bool { return len(hb.GetRunning()) == 2 })
	require.Equal(t, []string{"b1", "b2"}, ids(hb.GetRunning()))
	require.True(t, hb.GetServiceHealthy())

	// Capacity frees up when executions end.
	<-e.blocked
	<-e.blocked
	e.releaseBlocked()
	r.result("b1")
	r.result("b2")
	require.Equal(t, 0, e.agent.Running())
	r.assign(assignment("b4", "block", 1))
	require.Equal(t, []string{"b4"}, ids(r.started().GetExecutions()))
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, r.result("b4").GetOutcome())
}

func TestUnknownHandlerIsReleased(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	r.assign(assignment("u1", "nope", 1), assignment("u2", "echo", 1))
	rel := r.released()
	require.Equal(t, agent.ReasonUnknownHandler, rel.GetReason())
	require.Equal(t, []string{"u1"}, ids(rel.GetExecutions()))
	require.Equal(t, []string{"u2"}, ids(r.started().GetExecutions()))
}

func TestRepeatedAssignmentIsIgnored(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	r.assign(assignment("w1", "wait", 4))
	require.Equal(t, []string{"w1"}, ids(r.started().GetExecutions()))
	<-e.waiting
	r.assign(assignment("w1", "wait", 4), assignment("w2", "echo", 1))
	// Only w2 starts; w1 keeps its single run.
	require.Equal(t, []string{"w2"}, ids(r.started().GetExecutions()))
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, r.result("w2").GetOutcome())
	require.Equal(t, 1, e.agent.Running())
	select {
	case id := <-e.waiting:
		t.Fatalf("execution %s started twice", id)
	default:
	}
}

func TestNewerLeaseWhileRunningCancelsOlderRun(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	r.assign(assignment("w1", "wait", 1))
	r.started()
	<-e.waiting
	r.assign(assignment("w1", "wait", 2))
	rel := r.released()
	require.Equal(t, agent.ReasonPreviousLease, rel.GetReason())
	require.EqualValues(t, 2, rel.GetExecutions()[0].GetLeaseEpoch())
	res := r.result("w1")
	require.Equal(t, agentv1.Outcome_OUTCOME_CANCELLED, res.GetOutcome())
	require.EqualValues(t, 1, res.GetLeaseEpoch())
}

func TestCancelReachesHandler(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	asg := assignment("c1", "wait", 5)
	asg.Deadline = timestamppb.New(time.Now().Add(time.Hour))
	r.assign(asg)
	r.started()
	require.Equal(t, "c1", <-e.waiting)

	r.cancelExecution("c1", 4) // wrong epoch: ignored
	r.cancelExecution("c1", 5)
	res := r.result("c1")
	require.Equal(t, agentv1.Outcome_OUTCOME_CANCELLED, res.GetOutcome())
	require.EqualValues(t, 5, res.GetLeaseEpoch())
	require.Equal(t, 0, e.agent.Running())
}

func TestDeadlineTimesOut(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	asg := assignment("d1", "wait", 1)
	asg.Deadline = timestamppb.New(time.Now().Add(50 * time.Millisecond))
	r.assign(asg)
	res := r.result("d1")
	require.Equal(t, agentv1.Outcome_OUTCOME_TIMED_OUT, res.GetOutcome())
	require.Equal(t, "DeadlineExceeded", res.GetError().GetKind())
}

func TestAgentEnforcesDeadline(t *testing.T) {
	t.Parallel()
	e := setup(t, nil) // DeadlineGrace is 100ms
	e.waitHealthy()
	r, _ := e.connect(1)
	asg := assignment("d2", "block", 1) // ignores its context
	asg.Deadline = timestamppb.New(time.Now().Add(50 * time.Millisecond))
	r.assign(asg)
	<-e.blocked
	res := r.result("d2")
	require.Equal(t, agentv1.Outcome_OUTCOME_TIMED_OUT, res.GetOutcome())
	require.Equal(t, "DeadlineExceeded", res.GetError().GetKind())
	require.Contains(t, res.GetError().GetMessage(), "no result")
	require.True(t, res.GetError().GetRetryable())
	require.Equal(t, 0, e.agent.Running())
	require.True(t, res.GetFinishTime().AsTime().After(asg.GetDeadline().AsTime()))
}

func TestProgressAndLogsAreForwarded(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	r.assign(assignment("p1", "chatty", 6))
	p := r.next(func(m *agentv1.ConnectResponse) bool { return m.GetProgress() != nil }).GetProgress()
	require.Equal(t, "p1", p.GetExecutionId())
	require.EqualValues(t, 6, p.GetLeaseEpoch())
	require.InDelta(t, 0.5, p.GetFraction(), 0)
	require.Equal(t, "halfway", p.GetMessage())
	l := r.next(func(m *agentv1.ConnectResponse) bool { return m.GetLog() != nil }).GetLog()
	require.Equal(t, "p1", l.GetExecutionId())
	require.EqualValues(t, 6, l.GetLeaseEpoch())
	require.Equal(t, "WARN", l.GetLevel())
	require.Equal(t, "low on disk", l.GetMessage())
	require.NotNil(t, l.GetTime())
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, r.result("p1").GetOutcome())
}

func TestResultsResentUntilAcked(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r1, _ := e.connect(1)
	r1.assign(assignment("r1", "echo", 1))
	first := r1.result("r1")
	r1.cancel() // the stream breaks before the replica acknowledges
	require.Eventually(t, func() bool { _, live := e.agent.SessionEpoch(); return !live }, waitFor, tick)

	r2, _ := e.connect(2)
	again := r2.result("r1")
	require.Equal(t, first.GetOutput(), again.GetOutput())
	require.EqualValues(t, 1, again.GetLeaseEpoch())

	// A rejected result is forgotten too.
	r2.send(&agentv1.ConnectRequest{Kind: &agentv1.ConnectRequest_Ack{Ack: &agentv1.Ack{Results: []*agentv1.ResultAck{
		{ExecutionId: "r1", LeaseEpoch: 1, Applied: false, Reason: "stale lease"},
	}}}})
	require.Eventually(t, func() bool { return e.agent.PendingResults() == 0 }, waitFor, tick)
	r2.cancel()

	// The next session starts with Hello and goes straight to heartbeats: nothing to re-send.
	r3, _ := e.connect(3)
	m := r3.receive()
	require.NotNil(t, m.GetHeartbeat(), "got %v", m)
}

func TestResultProducedWithoutSessionIsDelivered(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r1, _ := e.connect(1)
	r1.assign(assignment("late", "block", 2))
	r1.started()
	<-e.blocked
	r1.cancel()
	require.Eventually(t, func() bool { _, live := e.agent.SessionEpoch(); return !live }, waitFor, tick)

	e.releaseBlocked()
	require.Eventually(t, func() bool { return e.agent.PendingResults() == 1 }, waitFor, tick)

	r2, hello := e.connect(2)
	require.Empty(t, hello.GetRunning())
	res := r2.result("late")
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, res.GetOutcome())
	require.EqualValues(t, 2, res.GetLeaseEpoch())
}

func TestHelloListsExecutionsStillRunning(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r1, _ := e.connect(1)
	r1.assign(assignment("keep", "wait", 8))
	r1.started()
	<-e.waiting
	r1.cancel()

	r2, hello := e.connect(2)
	require.Len(t, hello.GetRunning(), 1)
	require.Equal(t, "keep", hello.GetRunning()[0].GetExecutionId())
	require.EqualValues(t, 8, hello.GetRunning()[0].GetLeaseEpoch())
	// The new session can cancel it.
	r2.cancelExecution("keep", 8)
	require.Equal(t, agentv1.Outcome_OUTCOME_CANCELLED, r2.result("keep").GetOutcome())
}

func TestSessionTakeover(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r5, _ := e.connect(5)

	r6, _ := e.connect(6)
	require.Equal(t, codes.Aborted, status.Code(r5.ended()))
	epoch, live := e.agent.SessionEpoch()
	require.True(t, live)
	require.EqualValues(t, 6, epoch)

	// A lower epoch is refused and leaves the live session alone.
	r4, err := e.tryConnect(4)
	require.NoError(t, err)
	require.Equal(t, codes.FailedPrecondition, status.Code(r4.ended()))
	r6.assign(assignment("t1", "echo", 1))
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, r6.result("t1").GetOutcome())

	// An equal epoch takes over (the same replica reconnecting).
	r6b, _ := e.connect(6)
	require.Equal(t, codes.Aborted, status.Code(r6.ended()))
	r6b.assign(assignment("t2", "echo", 1))
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, r6b.result("t2").GetOutcome())
}

func TestServiceDownAndRecovery(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	r.assign(assignment("s1", "wait", 2), assignment("s1b", "wait", 2))
	require.Len(t, r.started().GetExecutions(), 2)
	<-e.waiting
	<-e.waiting

	e.app.down()
	// Results that are ready together travel together.
	batch := r.next(func(m *agentv1.ConnectResponse) bool { return m.GetResults() != nil }).GetResults()
	require.Len(t, batch.GetResults(), 2)
	res := r.result("s1")
	require.Equal(t, res, batch.GetResults()[0])
	require.Equal(t, agentv1.Outcome_OUTCOME_FAILED, res.GetOutcome())
	require.Equal(t, "ServiceUnavailable", res.GetError().GetKind())
	require.True(t, res.GetError().GetRetryable())
	require.Contains(t, res.GetError().GetMessage(), e.app.Addr().String())
	require.EqualValues(t, 2, res.GetLeaseEpoch())

	r.heartbeat(func(hb *agentv1.Heartbeat) bool { return !hb.GetServiceHealthy() })
	r.assign(assignment("s2", "echo", 1))
	rel := r.released()
	require.Equal(t, agent.ReasonServiceUnavailable, rel.GetReason())
	require.Equal(t, []string{"s2"}, ids(rel.GetExecutions()))

	// The agent keeps trying while the service is down.
	<-e.app.refused
	e.app.up()
	r.heartbeat(func(hb *agentv1.Heartbeat) bool { return hb.GetServiceHealthy() })
	r.assign(assignment("s3", "echo", 1))
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, r.result("s3").GetOutcome())
}

func TestHandlerListRefresh(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)
	e.w.Handle("brand-new", func(context.Context, []byte) ([]byte, error) { return nil, nil })
	hb := r.heartbeat(func(hb *agentv1.Heartbeat) bool { return len(hb.GetHandlers()) > 0 })
	require.Contains(t, hb.GetHandlers(), "brand-new")
	// Only a change is reported.
	next := r.heartbeat(func(*agentv1.Heartbeat) bool { return true })
	require.Empty(t, next.GetHandlers())
	r.assign(assignment("n1", "brand-new", 1))
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, r.result("n1").GetOutcome())
}

func TestDrain(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *agent.Config) { c.DrainTimeout = waitFor })
	e.waitHealthy()
	r, _ := e.connect(1)
	r.assign(assignment("d1", "block", 1))
	r.started()
	<-e.blocked

	e.stopAgent()
	r.heartbeat(func(hb *agentv1.Heartbeat) bool { return hb.GetDraining() && len(hb.GetRunning()) == 1 })
	r.assign(assignment("d2", "echo", 1))
	rel := r.released()
	require.Equal(t, agent.ReasonDraining, rel.GetReason())

	select {
	case err := <-e.agentServed:
		t.Fatalf("agent stopped with work running: %v", err)
	default:
	}
	e.releaseBlocked()
	res := r.result("d1")
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, res.GetOutcome())
	r.ack(res)
	require.ErrorIs(t, r.ended(), io.EOF) // the agent ends the session cleanly
	require.NoError(t, <-e.agentServed)
	e.agentServed <- nil // for the cleanup
}

func TestDrainTimeoutCancelsRunningWork(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *agent.Config) { c.DrainTimeout = 50 * time.Millisecond })
	e.waitHealthy()
	r, _ := e.connect(1)
	r.assign(assignment("slow", "wait", 3))
	r.started()
	<-e.waiting

	e.stopAgent()
	res := r.result("slow")
	// Work cut short by a shutdown runs again: a retryable failure, not a cancellation.
	require.Equal(t, agentv1.Outcome_OUTCOME_FAILED, res.GetOutcome())
	require.Equal(t, "AgentShutdown", res.GetError().GetKind())
	require.True(t, res.GetError().GetRetryable())
	r.ack(res)
	require.NoError(t, <-e.agentServed)
	e.agentServed <- nil
}

func TestAppToken(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		token   string
		healthy bool
	}{
		{"right token", "s3cret", true},
		{"wrong token", "guess", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			w := worker.New(worker.Options{Token: "s3cret", Logger: testLogger()})
			w.Handle("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
			ctx, stop := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- w.Serve(ctx, lis) }()
			defer func() { stop(); require.NoError(t, <-served) }()

			a, err := agent.New(agent.Config{AppAddr: lis.Addr().String(), AppToken: tt.token, Logger: testLogger(),
				FinalTimeout: time.Millisecond})
			require.NoError(t, err)
			alis, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			actx, astop := context.WithCancel(context.Background())
			aserved := make(chan error, 1)
			go func() { aserved <- a.Serve(actx, alis) }()
			defer func() { astop(); require.NoError(t, <-aserved) }()

			if tt.healthy {
				require.Eventually(t, a.ServiceHealthy, waitFor, tick)
				require.Equal(t, []string{"echo"}, a.Handlers())
			} else {
				require.Never(t, a.ServiceHealthy, 200*time.Millisecond, 10*time.Millisecond)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := agent.New(agent.Config{Capacity: -1})
	require.ErrorContains(t, err, "capacity")
	_, err = agent.New(agent.Config{Weight: -2, DrainTimeout: -time.Second})
	require.ErrorContains(t, err, "weight")
	require.ErrorContains(t, err, "drain timeout")
}

func TestDefaultID(t *testing.T) {
	t.Parallel()
	id := agent.DefaultID("127.0.0.1:7402")
	_, port, err := net.SplitHostPort(id)
	require.NoError(t, err)
	require.Equal(t, "7402", port)
}

func TestAssignmentAheadOfItsStartTime(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	e.waitHealthy()
	r, _ := e.connect(1)

	// Work handed over ahead of its time is reported started at its start time, holds a
	// slot while it waits, and runs its handler then.
	at := time.Now().Add(200 * time.Millisecond).UTC().Truncate(time.Microsecond)
	asg := assignment("exec-ahead", "info", 1)
	asg.StartTime = timestamppb.New(at)
	asg.Deadline = timestamppb.New(at.Add(time.Minute))
	r.assign(asg)
	started := r.started()
	require.Equal(t, []string{"exec-ahead"}, ids(started.GetExecutions()))
	require.True(t, started.GetTime().AsTime().Equal(at), "started at %s, want %s", started.GetTime().AsTime(), at)
	require.False(t, time.Now().Before(at), "reported started before its start time")
	res := r.result("exec-ahead")
	require.Equal(t, agentv1.Outcome_OUTCOME_SUCCEEDED, res.GetOutcome())
	require.False(t, time.Now().Before(at), "the result came before the start time")
	require.True(t, res.GetStartTime().AsTime().Equal(at))
}
