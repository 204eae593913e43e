package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/discovery"
)

// fakeReplicas is a replica registry in memory; fail makes every call fail.
type fakeReplicas struct {
	mu           sync.Mutex
	ids          []string
	fail         error
	deregistered []string
}

func (f *fakeReplicas) Replicas(context.Context) ([]discovery.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	out := make([]discovery.Replica, 0, len(f.ids))
	for _, id := range f.ids {
		out = append(out, discovery.Replica{ID: id})
	}
	return out, nil
}

func (f *fakeReplicas) RegisterReplica(_ context.Context, r discovery.Replica, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if !slices.Contains(f.ids, r.ID) {
		f.ids = append(f.ids, r.ID)
	}
	return nil
}

func (f *fakeReplicas) DeregisterReplica(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deregistered = append(f.deregistered, id)
	f.ids = slices.DeleteFunc(f.ids, func(s string) bool { return s == id })
	return nil
}

func (f *fakeReplicas) set(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = ids
}

func (f *fakeReplicas) failWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// manualClock is a local clock moved by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// ownedBy returns the agents (of agents) m owns.
func ownedBy(m *membership, agents []string) []string {
	owns := m.view()
	var out []string
	for _, a := range agents {
		if owns(a) {
			out = append(out, a)
		}
	}
	return out
}

func TestMembership(t *testing.T) {
	t.Parallel()
	var agents []string
	for i := range 60 {
		agents = append(agents, "agent-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	setup := func() (*fakeReplicas, *manualClock, *membership) {
		reg := &fakeReplicas{}
		clock := &manualClock{now: time.Unix(1_000_000, 0)}
		m := newMembership(discovery.Replica{ID: "me"}, reg, 10*time.Second, clock.Now)
		return reg, clock, m
	}

	t.Run("OwnsItsShareOnceRegistered", func(t *testing.T) {
		t.Parallel()
		reg, _, m := setup()
		reg.set("other-1", "other-2")
		require.NoError(t, m.refresh(t.Context()))
		require.Empty(t, ownedBy(m, agents), "not registered: owns nothing")

		require.NoError(t, m.register(t.Context()))
		// The set was read before this replica registered; it counts itself in.
		mine := ownedBy(m, agents)
		for _, a := range agents {
			want := Owner(a, []string{"me", "other-1", "other-2"}) == "me"
			require.Equal(t, want, slices.Contains(mine, a), a)
		}
		require.NotEmpty(t, mine)
		require.Less(t, len(mine), len(agents))

		// Another replica leaves: this one takes some of its agents and keeps its own.
		reg.set("me", "other-1")
		require.NoError(t, m.refresh(t.Context()))
		more := ownedBy(m, agents)
		require.Subset(t, more, mine)
		require.Greater(t, len(more), len(mine))
	})

	t.Run("KeepsTheLastSetWhenTheRegistryFails", func(t *testing.T) {
		t.Parallel()
		reg, clock, m := setup()
		reg.set("other")
		require.NoError(t, m.register(t.Context()))
		require.NoError(t, m.refresh(t.Context()))
		before := ownedBy(m, agents)

		reg.failWith(errors.New("database unreachable"))
		require.Error(t, m.refresh(t.Context()))
		require.Equal(t, []string{"me", "other"}, m.liveSet())
		require.Equal(t, before, ownedBy(m, agents))

		// But a replica that cannot refresh its own registration stops owning before the
		// registration lapses for the others.
		require.Error(t, m.register(t.Context()))
		clock.Advance(8*time.Second - time.Millisecond)
		require.Equal(t, before, ownedBy(m, agents))
		clock.Advance(time.Millisecond)
		require.Empty(t, ownedBy(m, agents))

		reg.failWith(nil)
		require.NoError(t, m.register(t.Context()))
		require.Equal(t, before, ownedBy(m, agents), "registered again, it owns its share again")
	})

	t.Run("KeepsOwningWhileTheRegistryIsUnreachable", func(t *testing.T) {
		t.Parallel()
		reg, clock, m := setup()
		reg.failWith(fmt.Errorf("update consul check: %w: connection refused", discovery.ErrUnavailable))
		require.Error(t, m.register(t.Context()))
		require.Empty(t, ownedBy(m, agents), "never registered: owns nothing")

		reg.failWith(nil)
		reg.set("other")
		require.NoError(t, m.register(t.Context()))
		require.NoError(t, m.refresh(t.Context()))
		before := ownedBy(m, agents)
		require.NotEmpty(t, before)

		// Consul is down for everyone: nobody sees a change, so this replica keeps its
		// agents for as long as it lasts.
		reg.failWith(fmt.Errorf("update consul check: %w: connection refused", discovery.ErrUnavailable))
		for range 10 {
			clock.Advance(5 * time.Second)
			require.Error(t, m.register(t.Context()))
			require.Error(t, m.refresh(t.Context()))
			require.Equal(t, before, ownedBy(m, agents))
		}
		// An answer that refuses the registration is no outage: the registration lapses.
		reg.failWith(errors.New("403 permission denied"))
		require.Error(t, m.register(t.Context()))
		clock.Advance(8 * time.Second)
		require.Empty(t, ownedBy(m, agents))
	})

	t.Run("LeaveDeregistersAndOwnsNothing", func(t *testing.T) {
		t.Parallel()
		reg, _, m := setup()
		require.NoError(t, m.register(t.Context()))
		require.NoError(t, m.refresh(t.Context()))
		require.Len(t, ownedBy(m, agents), len(agents), "alone, it owns every agent")
		require.NoError(t, m.leave(t.Context()))
		require.Equal(t, []string{"me"}, reg.deregistered)
		require.Empty(t, ownedBy(m, agents))
		require.NoError(t, m.register(t.Context()))
		require.Empty(t, ownedBy(m, agents), "a replica that left does not come back by itself")
	})

	t.Run("WithoutRegistryOwnsEverything", func(t *testing.T) {
		t.Parallel()
		m := newMembership(discovery.Replica{ID: "me"}, nil, time.Second, time.Now)
		require.NoError(t, m.register(t.Context()))
		require.NoError(t, m.refresh(t.Context()))
		require.Len(t, ownedBy(m, agents), len(agents))
		require.NoError(t, m.leave(t.Context()))
		require.Empty(t, ownedBy(m, agents))
	})
}
