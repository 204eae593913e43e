// Package dbclock estimates the database clock from the local one.
//
// Due times, lease deadlines and registrations are all on the database clock (store.Now), so
// that replicas whose clocks disagree still agree on them. A replica that must act at such a
// time — start an execution at its nominal time — arms a local timer, and needs the offset
// between the two clocks to arm it right. A Clock measures that offset the way NTP does, from
// the midpoint of a round trip, keeps the sample with the shortest round trip of a few, and
// measures again periodically.
//
//	local:    t0 ──────── request ────────▶ t1
//	database:        db = now()
//	offset = db − (t0 + (t1−t0)/2)     error ≤ (t1−t0)/2
package dbclock

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// NowFunc reads the database clock; store.Store's Now is one.
type NowFunc func(ctx context.Context) (time.Time, error)

// Config tunes a Clock.
type Config struct {
	// Samples is how many round trips one measurement makes; the one with the shortest round
	// trip gives the offset. Default 3.
	Samples int
	// Interval is how often Run measures again. Default 30s.
	Interval time.Duration
	// Local is the local clock. Default time.Now.
	Local func() time.Time
}

// Clock is the database clock as seen from this process: the local clock plus the last
// measured offset. It is safe for concurrent use. The zero offset stands until the first
// measurement.
type Clock struct {
	cfg    Config
	db     NowFunc
	offset atomic.Int64 // nanoseconds to add to the local clock
}

// New returns a Clock that measures db.
func New(cfg Config, db NowFunc) *Clock {
	if cfg.Samples <= 0 {
		cfg.Samples = 3
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Local == nil {
		cfg.Local = time.Now
	}
	return &Clock{cfg: cfg, db: db}
}

// Offset returns the database clock minus the local clock, as last measured.
func (c *Clock) Offset() time.Duration {
	return time.Duration(c.offset.Load())
}

// Now returns the estimated database time.
func (c *Clock) Now() time.Time {
	return c.cfg.Local().Add(c.Offset())
}

// Until returns how long, on the local clock, until the database clock reaches t.
func (c *Clock) Until(t time.Time) time.Duration {
	return t.Sub(c.Now())
}

// Measure reads the database clock Samples times and sets the offset from the read with the
// shortest round trip. It returns that offset and the round trip's half, the error bound.
func (c *Clock) Measure(ctx context.Context) (offset, bound time.Duration, err error) {
	best := time.Duration(-1)
	for range c.cfg.Samples {
		t0 := c.cfg.Local()
		db, err := c.db(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("read the database clock: %w", err)
		}
		rtt := c.cfg.Local().Sub(t0)
		if best >= 0 && rtt >= best {
			continue
		}
		best = rtt
		offset = db.Sub(t0.Add(rtt / 2))
	}
	c.offset.Store(int64(offset))
	return offset, best / 2, nil
}

// Run measures at once and then every Interval until ctx is done. A failed measurement keeps
// the last offset; report, when not nil, is told of each measurement.
func (c *Clock) Run(ctx context.Context, report func(offset, bound time.Duration, err error)) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		offset, bound, err := c.Measure(ctx)
		if ctx.Err() != nil {
			return
		}
		if report != nil {
			report(offset, bound, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
