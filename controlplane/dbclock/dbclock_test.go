package dbclock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tockhq/tock/controlplane/dbclock"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClocks is a local clock and a database clock ahead of it by skew; each database read
// takes the next of rtts on the local clock, and the database answers at the midpoint.
type fakeClocks struct {
	local time.Time
	skew  time.Duration
	rtts  []time.Duration
	reads int
	err   error
}

func (f *fakeClocks) Local() time.Time { return f.local }

func (f *fakeClocks) DB(context.Context) (time.Time, error) {
	if f.err != nil {
		return time.Time{}, f.err
	}
	rtt := f.rtts[f.reads%len(f.rtts)]
	f.reads++
	f.local = f.local.Add(rtt / 2)
	db := f.local.Add(f.skew)
	f.local = f.local.Add(rtt - rtt/2)
	return db, nil
}

func TestMeasure(t *testing.T) {
	t.Parallel()
	f := &fakeClocks{
		local: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		skew:  -1500 * time.Millisecond,
		rtts:  []time.Duration{40 * time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond},
	}
	c := dbclock.New(dbclock.Config{Local: f.Local}, f.DB)
	require.Zero(t, c.Offset(), "no offset before the first measurement")

	offset, bound, err := c.Measure(t.Context())
	require.NoError(t, err)
	require.Equal(t, 3, f.reads)
	require.Equal(t, -1500*time.Millisecond, offset)
	require.Equal(t, time.Millisecond, bound, "the shortest round trip bounds the error")
	require.Equal(t, offset, c.Offset())
	require.Equal(t, f.local.Add(-1500*time.Millisecond), c.Now())

	due := c.Now().Add(250 * time.Millisecond)
	require.Equal(t, 250*time.Millisecond, c.Until(due), "timers are armed on the local clock")

	f.err = errors.New("connection refused")
	_, _, err = c.Measure(t.Context())
	require.ErrorContains(t, err, "connection refused")
	require.Equal(t, -1500*time.Millisecond, c.Offset(), "a failed measurement keeps the last offset")
}

func TestRunMeasuresUntilCancelled(t *testing.T) {
	t.Parallel()
	f := &fakeClocks{local: time.Unix(0, 0), skew: time.Second, rtts: []time.Duration{time.Millisecond}}
	c := dbclock.New(dbclock.Config{Local: f.Local, Samples: 1, Interval: time.Millisecond}, f.DB)
	ctx, cancel := context.WithCancel(t.Context())
	reports := make(chan time.Duration, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, func(offset, _ time.Duration, err error) {
			if err == nil {
				select {
				case reports <- offset:
				default:
				}
			}
		})
	}()
	for range 2 {
		require.Equal(t, time.Second, <-reports)
	}
	cancel()
	<-done
}
