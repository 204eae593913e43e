package main

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// workload is one benchmark of BENCHMARKS.md. Run does every repetition itself (env.Reps of
// them), so that a workload can share a costly set-up between its repetitions, and returns
// one Result per case it measured.
type workload interface {
	// ID is the short id, such as "W4".
	ID() string
	// Name says in a few words what it measures.
	Name() string
	// Run measures the workload in env.
	Run(ctx context.Context, env *Env) ([]Result, error)
}

// workloads are the implemented workloads, in the order they run. Later ones (W1 drain vs
// River, W2 open loop, W5 burst, W6 sidecar overhead, W7 failover, W8 scale, W9 tracing cost,
// W10 SDK parity) are added here.
func workloads() []workload {
	return []workload{w0{}, w1{}, w2{}, w3{}, w4{}, w5{}, w6{}, w7{}, w8{}, w9{}, w10{}}
}

// Result is what one case of a workload measured over its repetitions.
type Result struct {
	// Workload is the workload's id, Case the case's short name ("10k-min"), Title a line
	// describing the case.
	Workload, Case, Title string
	// Metrics are the figures, one value per repetition each.
	Metrics []*Metric
	// Series are sample distributions worth plotting, one per repetition each.
	Series []*Series
	// Notes are remarks printed under the case's table (what was checked, anomalies).
	Notes []string
	// Summary is the one-line summary printed at the end; built from Metrics when empty.
	Summary string
}

// Metric is one figure measured once per repetition.
type Metric struct {
	// Key identifies the metric in CSV output and in ratios ("lateness_p99").
	Key string
	// Label is the name shown in tables ("fire lateness p99").
	Label string
	// Unit is "ms", "µs", "s", "/s", "B", "MB", "%", "count" or "" (a plain number).
	Unit string
	// Target is BENCHMARKS.md's target for the figure, shown beside it ("≤ 5 ms"); may be empty.
	Target string
	// Values holds one value per repetition, in order.
	Values []float64
}

// Median returns the median of the metric's values, and their minimum and maximum.
func (m *Metric) Median() (median, lo, hi float64) { return medianMinMax(m.Values) }

// Series is a distribution of samples per repetition, in Unit.
type Series struct {
	// Key names the series in file names ("lateness").
	Key string
	// Label is the axis label ("fire lateness (handler start − nominal time)").
	Label string
	// Unit of the samples ("ms").
	Unit string
	// Reps holds the samples of each repetition.
	Reps [][]float64
}

// metric returns r's metric with key, adding it when new.
func (r *Result) metric(key, label, unit, target string) *Metric {
	for _, m := range r.Metrics {
		if m.Key == key {
			return m
		}
	}
	m := &Metric{Key: key, Label: label, Unit: unit, Target: target}
	r.Metrics = append(r.Metrics, m)
	return m
}

// add appends one repetition's value of a metric.
func (r *Result) add(key, label, unit, target string, v float64) {
	m := r.metric(key, label, unit, target)
	m.Values = append(m.Values, v)
}

// addDist appends p50, p99 and max of one repetition's samples as metrics keyed
// prefix_p50, prefix_p99 and prefix_max, and the samples to a series keyed prefix.
func (r *Result) addDist(prefix, label, unit string, targets [3]string, samples []float64) {
	s := summarize(samples)
	r.add(prefix+"_p50", label+" p50", unit, targets[0], s.P50)
	r.add(prefix+"_p99", label+" p99", unit, targets[1], s.P99)
	r.add(prefix+"_max", label+" max", unit, targets[2], s.Max)
	r.series(prefix, label, unit).Reps = append(r.series(prefix, label, unit).Reps, samples)
}

// series returns r's series with key, adding it when new.
func (r *Result) series(key, label, unit string) *Series {
	for _, s := range r.Series {
		if s.Key == key {
			return s
		}
	}
	s := &Series{Key: key, Label: label, Unit: unit}
	r.Series = append(r.Series, s)
	return s
}

// find returns the metric with key, or nil.
func (r *Result) find(key string) *Metric {
	for _, m := range r.Metrics {
		if m.Key == key {
			return m
		}
	}
	return nil
}

// summaryLine is the one line printed for the result at the end of a run.
func (r *Result) summaryLine() string {
	if r.Summary != "" {
		return r.Workload + " " + r.Case + ": " + r.Summary
	}
	var parts []string
	for _, m := range r.Metrics {
		med, _, _ := m.Median()
		parts = append(parts, m.Label+" "+formatValue(med, m.Unit))
	}
	return r.Workload + " " + r.Case + ": " + strings.Join(parts, ", ")
}

// totalOf returns the sum over the repetitions of r's metric key, NaN when absent: for counts
// that must be zero, where one bad repetition must not hide behind a median.
func (r *Result) totalOf(key string) float64 {
	m := r.find(key)
	if m == nil {
		return math.NaN()
	}
	var sum float64
	for _, v := range m.Values {
		if !math.IsNaN(v) {
			sum += v
		}
	}
	return sum
}

// medianOf returns the median of r's metric key, NaN when absent.
func (r *Result) medianOf(key string) float64 {
	m := r.find(key)
	if m == nil {
		return math.NaN()
	}
	med, _, _ := m.Median()
	return med
}

// formatValue renders v in unit with about three significant digits.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "–"
	}
	switch unit {
	case "count":
		return fmt.Sprintf("%.0f", v)
	case "/s":
		switch {
		case math.Abs(v) >= 1e6:
			return fmt.Sprintf("%.2fM/s", v/1e6)
		case math.Abs(v) >= 1e4:
			return fmt.Sprintf("%.1fk/s", v/1e3)
		case math.Abs(v) >= 1e3:
			return fmt.Sprintf("%.2fk/s", v/1e3)
		}
		return fmt.Sprintf("%.1f/s", v)
	case "ms":
		switch {
		case math.Abs(v) < 1:
			return fmt.Sprintf("%.0f µs", v*1e3)
		case math.Abs(v) >= 1000:
			return fmt.Sprintf("%.2f s", v/1e3)
		}
		return fmt.Sprintf("%.3g ms", v)
	case "µs":
		if math.Abs(v) >= 1000 {
			return formatValue(v/1000, "ms")
		}
		return fmt.Sprintf("%.3g µs", v)
	case "x":
		return fmt.Sprintf("%.2f×", v)
	case "MB":
		return fmt.Sprintf("%.1f MB", v)
	case "B":
		switch {
		case math.Abs(v) >= 1<<20:
			return fmt.Sprintf("%.3g MiB", v/(1<<20))
		case math.Abs(v) >= 1<<10:
			return fmt.Sprintf("%.3g KiB", v/(1<<10))
		}
		return fmt.Sprintf("%.3g B", v)
	case "s":
		return fmt.Sprintf("%.3g s", v)
	case "":
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}
