package schedule

import "time"

// Preview returns up to n fire times of s strictly after t, earliest first; fewer when the
// schedule fires no more.
func Preview(s Schedule, t time.Time, n int) []time.Time {
	out := make([]time.Time, 0, max(0, n))
	for len(out) < n {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}
