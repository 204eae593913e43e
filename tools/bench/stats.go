package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the q-quantile (0 ≤ q ≤ 1) of sorted, interpolating linearly between
// the two nearest ranks (the "type 7" definition that R and NumPy use by default). sorted
// must be in ascending order. It returns NaN for an empty slice.
func percentile(sorted []float64, q float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return math.NaN()
	case q <= 0:
		return sorted[0]
	case q >= 1:
		return sorted[n-1]
	}
	pos := q * float64(n-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, n-1)
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[hi]-sorted[lo])
}

// summary describes one distribution of samples.
type summary struct {
	N                   int
	Min, P50, P99, P999 float64
	Max, Mean           float64
}

// summarize sorts a copy of samples and describes it. An empty input gives NaN everywhere
// except N.
func summarize(samples []float64) summary {
	s := slices.Clone(samples)
	slices.Sort(s)
	out := summary{N: len(s)}
	if len(s) == 0 {
		nan := math.NaN()
		out.Min, out.P50, out.P99, out.P999, out.Max, out.Mean = nan, nan, nan, nan, nan, nan
		return out
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	out.Min, out.Max = s[0], s[len(s)-1]
	out.P50 = percentile(s, 0.50)
	out.P99 = percentile(s, 0.99)
	out.P999 = percentile(s, 0.999)
	out.Mean = sum / float64(len(s))
	return out
}

// medianMinMax returns the median, smallest and largest of the values that are not NaN; NaN
// for all three when there are none. The median of an even count is the mean of the middle
// two.
func medianMinMax(values []float64) (median, lo, hi float64) {
	v := make([]float64, 0, len(values))
	for _, x := range values {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		median = v[n/2]
	} else {
		median = (v[n/2-1] + v[n/2]) / 2
	}
	return median, v[0], v[n-1]
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// msSamples converts durations to milliseconds.
func msSamples(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}
