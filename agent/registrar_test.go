package agent_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/agent"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fakeRegistrar is a Registrar whose behaviour the test sets with function fields.
type fakeRegistrar struct {
	RegisterFunc   func(ctx context.Context, r agent.Registration) (time.Duration, error)
	DeregisterFunc func(ctx context.Context, id string) error
}

func (f *fakeRegistrar) Register(ctx context.Context, r agent.Registration) (time.Duration, error) {
	return f.RegisterFunc(ctx, r)
}

func (f *fakeRegistrar) Deregister(ctx context.Context, id string) error {
	return f.DeregisterFunc(ctx, id)
}

// registrations records what a fakeRegistrar saw.
type registrations struct {
	mu           sync.Mutex // protects calls and deregistered
	calls        []agent.Registration
	deregistered []string
}

func (r *registrations) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *registrations) last() agent.Registration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[len(r.calls)-1]
}

func TestRegistration(t *testing.T) {
	t.Parallel()
	rec := &registrations{}
	reg := &fakeRegistrar{
		RegisterFunc: func(ctx context.Context, r agent.Registration) (time.Duration, error) {
			if _, ok := ctx.Deadline(); !ok {
				return 0, errors.New("register called without a deadline")
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.calls = append(rec.calls, r)
			return 20 * time.Millisecond, nil
		},
		DeregisterFunc: func(ctx context.Context, id string) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.deregistered = append(rec.deregistered, id)
			return nil
		},
	}
	e := setup(t, func(c *agent.Config) {
		c.Registry = reg
		c.Advertise = "10.0.0.7:7402"
		c.RegistrationTTL = 9 * time.Second
	})
	// It registers again at the interval the registry asked for, with the current handlers.
	require.Eventually(t, func() bool {
		return rec.count() >= 3 && len(rec.last().Handlers) > 0
	}, waitFor, tick)
	got := rec.last()
	require.False(t, got.Ready, "no session yet")
	require.Contains(t, got.Status, "waiting for a control-plane replica")
	got.Ready, got.Status = false, ""
	require.Equal(t, agent.Registration{
		ID:       "agent-1",
		Service:  "billing",
		Address:  "10.0.0.7:7402",
		Labels:   map[string]string{"zone": "eu-1"},
		Weight:   2,
		Capacity: 4,
		Handlers: []string{"block", "chatty", "echo", "fail", "info", "trace", "wait"},
		TTL:      9 * time.Second,
	}, got)

	e.stopAgent()
	require.NoError(t, <-e.agentServed)
	e.agentServed <- nil
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, []string{"agent-1"}, rec.deregistered)
}

func TestRegistrationRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var attempts []time.Time
	succeeded := make(chan struct{})
	reg := &fakeRegistrar{
		RegisterFunc: func(context.Context, agent.Registration) (time.Duration, error) {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, time.Now())
			switch {
			case len(attempts) < 3:
				return 0, status.Error(codes.Unavailable, "control plane down")
			case len(attempts) == 3:
				close(succeeded)
			}
			return time.Hour, nil
		},
		DeregisterFunc: func(context.Context, string) error { return errors.New("gone") },
	}
	setup(t, func(c *agent.Config) { c.Registry = reg })
	select {
	case <-succeeded:
	case <-time.After(waitFor):
		t.Fatal("registration never succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	// Failures are retried after a pause, never in a tight loop.
	for i := 1; i < 3; i++ {
		require.GreaterOrEqual(t, attempts[i].Sub(attempts[i-1]), 100*time.Millisecond)
	}
}

// registryServer is a fake control-plane registry.
type registryServer struct {
	agentv1.UnimplementedRegistryServiceServer
	mu           sync.Mutex // protects got and deregistered
	got          *agentv1.RegisterRequest
	deregistered string
}

func (s *registryServer) Register(_ context.Context, req *agentv1.RegisterRequest) (*agentv1.RegisterResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = req
	return &agentv1.RegisterResponse{RefreshInterval: durationpb.New(4 * time.Second)}, nil
}

func (s *registryServer) Deregister(_ context.Context, req *agentv1.DeregisterRequest) (*agentv1.DeregisterResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.GetAgentId() == "missing" {
		return nil, status.Error(codes.NotFound, "no such agent")
	}
	s.deregistered = req.GetAgentId()
	return &agentv1.DeregisterResponse{}, nil
}

func TestGRPCRegistrar(t *testing.T) {
	t.Parallel()
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer()
	fake := &registryServer{}
	agentv1.RegisterRegistryServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///registry",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	reg := agent.NewGRPCRegistrar(conn)

	refresh, err := reg.Register(t.Context(), agent.Registration{
		ID: "a1", Service: "svc", Address: "10.0.0.1:7402", Labels: map[string]string{"k": "v"},
		Weight: 3, Capacity: 8, Handlers: []string{"echo"}, TTL: 12 * time.Second,
	})
	require.NoError(t, err)
	require.Equal(t, 4*time.Second, refresh)
	fake.mu.Lock()
	got := fake.got
	fake.mu.Unlock()
	require.Equal(t, "a1", got.GetAgentId())
	require.Equal(t, "svc", got.GetService())
	require.Equal(t, "10.0.0.1:7402", got.GetAddress())
	require.Equal(t, map[string]string{"k": "v"}, got.GetLabels())
	require.EqualValues(t, 3, got.GetWeight())
	require.EqualValues(t, 8, got.GetCapacity())
	require.Equal(t, []string{"echo"}, got.GetHandlers())
	require.Equal(t, 12*time.Second, got.GetTtl().AsDuration())

	require.NoError(t, reg.Deregister(t.Context(), "a1"))
	fake.mu.Lock()
	require.Equal(t, "a1", fake.deregistered)
	fake.mu.Unlock()

	err = reg.Deregister(t.Context(), "missing")
	require.Equal(t, codes.NotFound, status.Code(err))
	require.ErrorContains(t, err, "deregister agent missing")
}

// TestRegistrationReadiness follows Registration.Ready through a session's life. The registry
// asks for refreshes an hour apart, so every change seen here was pushed by the agent.
func TestRegistrationReadiness(t *testing.T) {
	t.Parallel()
	rec := &registrations{}
	reg := &fakeRegistrar{
		RegisterFunc: func(_ context.Context, r agent.Registration) (time.Duration, error) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.calls = append(rec.calls, r)
			return time.Hour, nil
		},
		DeregisterFunc: func(context.Context, string) error { return nil },
	}
	e := setup(t, func(c *agent.Config) {
		c.Registry = reg
		c.SessionGrace = 300 * time.Millisecond
	})
	waitStatus := func(ready bool, status string) {
		t.Helper()
		require.Eventually(t, func() bool {
			last := rec.last()
			return rec.count() > 0 && last.Ready == ready && strings.Contains(last.Status, status)
		}, waitFor, tick, "want ready=%v %q", ready, status)
	}
	e.waitHealthy()
	waitStatus(false, "waiting for a control-plane replica")

	r, _ := e.connect(1)
	waitStatus(true, "in session with replica replica-a (epoch 1)")

	// A session that ends leaves the agent ready for the grace period, then not.
	r.cancel()
	waitStatus(true, "waiting for a replica to reconnect")
	ended := time.Now()
	waitStatus(false, "no control-plane session since")
	require.GreaterOrEqual(t, time.Since(ended), 200*time.Millisecond)

	r, _ = e.connect(2)
	waitStatus(true, "epoch 2")
	e.app.down()
	waitStatus(false, "local service at")
	e.app.up()
	waitStatus(true, "epoch 2")

	// Draining, with work still running, is not ready.
	r.assign(assignment("slow", "block", 1))
	<-e.blocked
	e.stopAgent()
	waitStatus(false, "draining")
	e.releaseBlocked()
	r.ack(r.result("slow"))
	require.NoError(t, <-e.agentServed)
	e.agentServed <- nil
}
