package scheduler

import (
	"hash/fnv"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// Jitter returns how long after its nominal time t a fire of job starts, for a schedule
// jitter of max: an amount in [0, max) drawn from (job, t), to the microsecond. It is the
// same every time it is asked, so that a store transaction that plans again, or another
// replica planning the same fire, decides the same start.
func Jitter(job string, t time.Time, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(job))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(t.UTC().Format(time.RFC3339Nano)))
	frac := float64(h.Sum64()>>11) / (1 << 53)
	return time.Duration(frac * float64(max)).Truncate(time.Microsecond)
}

func scheduleJitter(s *store.Schedule) time.Duration {
	if s == nil {
		return 0
	}
	return s.Jitter
}
