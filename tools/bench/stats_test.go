package main

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		sorted []float64
		q      float64
		want   float64
	}{
		{"single", []float64{7}, 0.5, 7},
		{"median odd", []float64{1, 2, 3}, 0.5, 2},
		{"median even interpolates", []float64{1, 2, 3, 4}, 0.5, 2.5},
		{"minimum", []float64{1, 2, 3, 4}, 0, 1},
		{"maximum", []float64{1, 2, 3, 4}, 1, 4},
		{"below zero clamps", []float64{1, 2}, -1, 1},
		{"above one clamps", []float64{1, 2}, 2, 2},
		{"p99 of 1..101", seq(1, 101), 0.99, 100},
		{"p90 of 1..10", seq(1, 10), 0.9, 9.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.InDelta(t, tc.want, percentile(tc.sorted, tc.q), 1e-9)
		})
	}
	require.True(t, math.IsNaN(percentile(nil, 0.5)))
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	s := summarize([]float64{5, 1, 4, 2, 3})
	require.Equal(t, 5, s.N)
	require.Equal(t, 1.0, s.Min)
	require.Equal(t, 5.0, s.Max)
	require.Equal(t, 3.0, s.P50)
	require.Equal(t, 3.0, s.Mean)
	require.InDelta(t, 4.96, s.P99, 1e-9)

	empty := summarize(nil)
	require.Zero(t, empty.N)
	require.True(t, math.IsNaN(empty.P50))
}

func TestSummarizeDoesNotReorderInput(t *testing.T) {
	t.Parallel()
	in := []float64{3, 1, 2}
	summarize(in)
	require.Equal(t, []float64{3, 1, 2}, in)
}

func TestMedianMinMax(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		in               []float64
		median, min, max float64
	}{
		{"one", []float64{4}, 4, 4, 4},
		{"odd", []float64{9, 1, 5}, 5, 1, 9},
		{"even", []float64{4, 1, 3, 2}, 2.5, 1, 4},
		{"NaN ignored", []float64{math.NaN(), 2, 6}, 4, 2, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			med, lo, hi := medianMinMax(tc.in)
			require.Equal(t, tc.median, med)
			require.Equal(t, tc.min, lo)
			require.Equal(t, tc.max, hi)
		})
	}
	med, lo, hi := medianMinMax([]float64{math.NaN()})
	require.True(t, math.IsNaN(med) && math.IsNaN(lo) && math.IsNaN(hi))
}

// seq returns from, from+1, …, to.
func seq(from, to int) []float64 {
	out := make([]float64, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}
