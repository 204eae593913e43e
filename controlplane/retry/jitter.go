package retry

import (
	"hash/fnv"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// Jittered returns the delay after the given attempt under policy p, shortened by up to
// p.Jitter of itself: Backoff × (1 − Jitter × u), where u in [0, 1) is drawn from the
// attempt's execution id. The draw is deterministic, so that a store transaction that runs
// the plan again decides the same time; different executions spread out.
func Jittered(p store.RetryPolicy, attempt int, id string) time.Duration {
	d := Backoff(p, attempt)
	if p.Jitter <= 0 {
		return d
	}
	j := min(p.Jitter, 1)
	return d - time.Duration(float64(d)*j*Fraction(id))
}

// Fraction maps a key to a number in [0, 1), the same every time for the same key.
func Fraction(key string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return float64(h.Sum64()>>11) / (1 << 53)
}
