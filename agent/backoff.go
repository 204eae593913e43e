package agent

import (
	"math/rand/v2"
	"time"
)

// backoff yields exponentially growing delays with jitter: attempt n waits a random duration
// between half and all of min·2ⁿ, capped at max.
type backoff struct {
	min, max time.Duration
	attempt  int
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max}
}

// next returns the delay before the next attempt.
func (b *backoff) next() time.Duration {
	d := b.max
	if b.attempt < 30 {
		d = min(b.min<<b.attempt, b.max)
	}
	b.attempt++
	half := d / 2
	return half + rand.N(d-half+1)
}

// reset starts again from the shortest delay.
func (b *backoff) reset() { b.attempt = 0 }
