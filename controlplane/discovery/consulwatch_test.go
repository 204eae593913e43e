package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/stretchr/testify/require"
)

// scriptedConsul answers a watch's queries from a script, one answer per query, and records
// the indexes asked with; once the script is done, queries wait for the test's end.
type scriptedConsul struct {
	answers chan answer
	mu      sync.Mutex
	asked   []uint64
}

type answer struct {
	members []string
	index   uint64
	err     error
}

func newScriptedConsul() *scriptedConsul { return &scriptedConsul{answers: make(chan answer)} }

func (s *scriptedConsul) query(ctx context.Context, index uint64, _ time.Duration) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	s.mu.Lock()
	s.asked = append(s.asked, index)
	s.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case a := <-s.answers:
		if a.err != nil {
			return nil, nil, a.err
		}
		entries := make([]*api.ServiceEntry, len(a.members))
		for i, m := range a.members {
			entries[i] = &api.ServiceEntry{Service: &api.AgentService{ID: m}}
		}
		return entries, &api.QueryMeta{LastIndex: a.index}, nil
	}
}

// send hands the watch its next answer, once it asks.
func (s *scriptedConsul) send(t *testing.T, a answer) {
	t.Helper()
	select {
	case s.answers <- a:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not query Consul")
	}
}

func (s *scriptedConsul) indexes() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.asked...)
}

func ids(entries []*api.ServiceEntry) map[string]string {
	out := map[string]string{}
	for _, e := range entries {
		out[e.Service.ID] = e.Service.ID
	}
	return out
}

func startWatch(t *testing.T, grace time.Duration) (*scriptedConsul, *watch[string]) {
	t.Helper()
	consul := newScriptedConsul()
	w := newWatch(watchConfig{
		service: "tock-agent", wait: time.Minute, recoveryGrace: grace,
		backoffMin: time.Millisecond, backoffMax: 4 * time.Millisecond, minInterval: time.Millisecond,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, consul.query, ids)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return consul, w
}

// eventually polls the watch's members until they are want.
func eventuallyMembers(t *testing.T, w *watch[string], want ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		got, err := w.members()
		if err != nil || len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond)
}

func TestWatch(t *testing.T) {
	t.Parallel()

	t.Run("BlocksOnTheLastIndex", func(t *testing.T) {
		t.Parallel()
		consul, w := startWatch(t, time.Minute)
		_, err := w.members()
		require.ErrorIs(t, err, errNotSynced)
		consul.send(t, answer{members: []string{"b", "a"}, index: 10})
		eventuallyMembers(t, w, "a", "b")
		consul.send(t, answer{members: []string{"a"}, index: 12})
		eventuallyMembers(t, w, "a")
		consul.send(t, answer{members: []string{"a"}, index: 12}) // the wait passed
		consul.send(t, answer{members: []string{"a", "c"}, index: 13})
		eventuallyMembers(t, w, "a", "c")
		require.Equal(t, []uint64{0, 10, 12, 12}, consul.indexes()[:4])
	})

	t.Run("NotSyncedReportsTheError", func(t *testing.T) {
		t.Parallel()
		consul, w := startWatch(t, time.Minute)
		consul.send(t, answer{err: errors.New("connection refused")})
		require.Eventually(t, func() bool {
			_, err := w.members()
			return err != nil && errors.Is(err, errNotSynced) && len(err.Error()) > len("consul service tock-agent: no answer from Consul yet")
		}, 10*time.Second, time.Millisecond)
	})

	t.Run("KeepsTheSetThroughAnOutageAndAfter", func(t *testing.T) {
		t.Parallel()
		consul, w := startWatch(t, time.Hour)
		consul.send(t, answer{members: []string{"a", "b", "c"}, index: 500})
		eventuallyMembers(t, w, "a", "b", "c")
		for range 3 {
			consul.send(t, answer{err: errors.New("connection refused")})
		}
		eventuallyMembers(t, w, "a", "b", "c")
		// Consul came back empty with a fresh index; members register again one by one.
		consul.send(t, answer{members: nil, index: 3})
		consul.send(t, answer{members: []string{"b"}, index: 7})
		consul.send(t, answer{members: []string{"b", "d"}, index: 9})
		eventuallyMembers(t, w, "a", "b", "c", "d")
		// After an error the query starts again without an index.
		asked := consul.indexes()
		require.Equal(t, []uint64{0, 500, 0, 0, 0, 3, 7}, asked[:7])
	})

	t.Run("DropsTheMissingWhenTheGraceEnds", func(t *testing.T) {
		t.Parallel()
		consul, w := startWatch(t, 50*time.Millisecond)
		consul.send(t, answer{members: []string{"a", "b"}, index: 100})
		consul.send(t, answer{members: []string{"a"}, index: 5}) // the index went back
		eventuallyMembers(t, w, "a", "b")
		require.Eventually(t, func() bool { // the grace runs out
			w.mu.Lock()
			defer w.mu.Unlock()
			return time.Now().After(w.recoverUntil)
		}, 10*time.Second, time.Millisecond)
		consul.send(t, answer{members: []string{"a"}, index: 6})
		eventuallyMembers(t, w, "a")
		consul.send(t, answer{members: []string{"a", "e"}, index: 8})
		eventuallyMembers(t, w, "a", "e")
		consul.send(t, answer{members: []string{"e"}, index: 9}) // outside the grace: at once
		eventuallyMembers(t, w, "e")
	})

	t.Run("BacksOffWithoutHotLooping", func(t *testing.T) {
		t.Parallel()
		consul := newScriptedConsul()
		w := newWatch(watchConfig{
			service: "tock-agent", wait: time.Minute, recoveryGrace: time.Minute,
			backoffMin: 20 * time.Millisecond, backoffMax: 80 * time.Millisecond, minInterval: time.Millisecond,
			logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}, func(context.Context, uint64, time.Duration) ([]*api.ServiceEntry, *api.QueryMeta, error) {
			consul.mu.Lock()
			defer consul.mu.Unlock()
			consul.asked = append(consul.asked, 0)
			return nil, nil, errors.New("connection refused")
		}, ids)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		w.run(ctx) // returns when ctx ends
		// Backoff from 20ms doubling to 80ms, jittered from half the minimum: at most about
		// 500ms / 10ms queries even if every draw were the smallest; a hot loop makes
		// thousands.
		require.Less(t, len(consul.indexes()), 60)
		require.Greater(t, len(consul.indexes()), 3)
	})
}
