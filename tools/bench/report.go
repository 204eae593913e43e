package main

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// writeWorkload writes one workload's results into dir: <id>.csv with every figure (one row
// per repetition, then the median, minimum and maximum), <id>-samples.csv with every sample
// of every distribution, and one SVG plot per distribution.
func writeWorkload(dir, id string, results []Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, id+".csv"), figureRows(results)); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, id+"-samples.csv"), sampleRows(results)); err != nil {
		return err
	}
	for _, r := range results {
		for _, s := range r.Series {
			name := plotName(r, s)
			var lines []plotLine
			for i, rep := range s.Reps {
				sorted := slices.Clone(rep)
				slices.Sort(sorted)
				lines = append(lines, plotLine{name: fmt.Sprintf("rep %d", i+1), samples: sorted})
			}
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			err = writePercentilePlot(f, r.Workload+" "+r.Case+": "+s.Label, s.Label, s.Unit, lines)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// plotName is the file name of a series' plot.
func plotName(r Result, s *Series) string {
	return fmt.Sprintf("%s-%s-%s.svg", r.Workload, r.Case, s.Key)
}

func figureRows(results []Result) [][]string {
	rows := [][]string{{"workload", "case", "metric", "label", "unit", "stat", "value"}}
	for _, r := range results {
		for _, m := range r.Metrics {
			row := func(stat string, v float64) []string {
				return []string{r.Workload, r.Case, m.Key, m.Label, m.Unit, stat, strconv.FormatFloat(v, 'g', 8, 64)}
			}
			for i, v := range m.Values {
				rows = append(rows, row("rep"+strconv.Itoa(i+1), v))
			}
			med, lo, hi := m.Median()
			rows = append(rows, row("median", med), row("min", lo), row("max", hi))
		}
	}
	return rows
}

func sampleRows(results []Result) [][]string {
	rows := [][]string{{"workload", "case", "series", "unit", "rep", "value"}}
	for _, r := range results {
		for _, s := range r.Series {
			for i, rep := range s.Reps {
				for _, v := range rep {
					rows = append(rows, []string{r.Workload, r.Case, s.Key, s.Unit, strconv.Itoa(i + 1), strconv.FormatFloat(v, 'g', 8, 64)})
				}
			}
		}
	}
	return rows
}

func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// report is everything a run produced, for results.md.
type report struct {
	machine  machine
	command  string
	reps     int
	quick    bool
	results  []Result
	failures []string
}

// markdown renders the report as a markdown document whose tables can be pasted into
// docs/benchmarks.md.
func (rp *report) markdown() string {
	var b strings.Builder
	b.WriteString("# Tock benchmark results\n\n")
	fmt.Fprintf(&b, "Command: `%s` (%d repetitions; every figure is the median, with the minimum and maximum over the repetitions).\n\n",
		rp.command, rp.reps)
	for _, line := range rp.machine.header() {
		b.WriteString(line + "\n")
	}
	b.WriteString("\n")
	if rp.quick {
		b.WriteString("This is a quick run: every workload is scaled down to check the program, not to measure Tock.\n\n")
	}
	for _, f := range rp.failures {
		fmt.Fprintf(&b, "**Failed:** %s\n\n", f)
	}
	for _, r := range rp.results {
		fmt.Fprintf(&b, "## %s %s: %s\n\n", r.Workload, r.Case, r.Title)
		b.WriteString(r.table())
		b.WriteString("\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
		if len(r.Notes) > 0 {
			b.WriteString("\n")
		}
		for _, s := range r.Series {
			fmt.Fprintf(&b, "![%s %s: %s](%s)\n\n", r.Workload, r.Case, s.Label, plotName(r, s))
		}
	}
	if rows := ceilingRatios(rp.results); len(rows) > 0 {
		b.WriteString("## Against the ceilings\n\n| figure | Tock | ceiling | ratio |\n|---|---|---|---|\n")
		for _, row := range rows {
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("## Summary\n\n```\n")
	for _, r := range rp.results {
		b.WriteString(r.summaryLine() + "\n")
	}
	b.WriteString("```\n")
	return b.String()
}

// table renders a result's figures as a markdown table.
func (r *Result) table() string {
	var b strings.Builder
	b.WriteString("| figure | median | min | max | target |\n|---|---|---|---|---|\n")
	for _, m := range r.Metrics {
		med, lo, hi := m.Median()
		target := m.Target
		if target == "" {
			target = "–"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", m.Label, formatValue(med, m.Unit), formatValue(lo, m.Unit),
			formatValue(hi, m.Unit), target)
	}
	return b.String()
}

// formatRatio renders a ratio with three significant digits, without an exponent.
func formatRatio(v float64) string {
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f×", v)
	}
	return fmt.Sprintf("%.3g×", v)
}

// ceilingRatios compares Tock's figures with the ceilings measured in the same run; none
// when W0 did not run.
func ceilingRatios(results []Result) [][]string {
	find := func(workload, c string) *Result {
		for i := range results {
			if results[i].Workload == workload && (c == "" || results[i].Case == c) {
				return &results[i]
			}
		}
		return nil
	}
	ceil := find("W0", "")
	if ceil == nil {
		return nil
	}
	var rows [][]string
	add := func(figure string, tock float64, tockUnit string, ceiling float64, ceilUnit, ceilName string, ratio float64) {
		if math.IsNaN(tock) || math.IsNaN(ceiling) || math.IsNaN(ratio) || math.IsInf(ratio, 0) {
			return
		}
		rows = append(rows, []string{figure, formatValue(tock, tockUnit), ceilName + " " + formatValue(ceiling, ceilUnit), formatRatio(ratio)})
	}
	rtt := ceil.medianOf("grpc_pingpong_p50")       // µs
	timerP99 := ceil.medianOf("timer_lateness_p99") // ms
	timerP50 := ceil.medianOf("timer_lateness_p50") // ms
	commit1 := 1000 / ceil.medianOf("pgbench_c1")   // ms per commit, one client
	commits32 := ceil.medianOf("pgbench_c32")       // commits/s, 32 clients
	if r := find("W3", ""); r != nil {
		p50 := r.medianOf("trigger_start_p50")
		add("W3 trigger→start p50 ÷ gRPC ping-pong round trip p50", p50, "ms", rtt, "µs", "round trip", p50*1000/rtt)
		add("W3 trigger→start p50 ÷ one-client commit time (1 ÷ pgbench 1-client rate)", p50, "ms", commit1, "ms", "commit", p50/commit1)
	}
	for _, r := range results {
		if r.Workload != "W4" {
			continue
		}
		p50, p99 := r.medianOf("lateness_p50"), r.medianOf("lateness_p99")
		add("W4 "+r.Case+" lateness p50 ÷ Go timer lateness p50", p50, "ms", timerP50, "ms", "timer", p50/timerP50)
		add("W4 "+r.Case+" lateness p99 ÷ Go timer lateness p99", p99, "ms", timerP99, "ms", "timer", p99/timerP99)
		if r.Case == "10k-min" {
			burst := ceil.medianOf("timer_burst_p99")
			add("W4 10k-min lateness p99 ÷ Go timer burst p99 (10,000 goroutines, one instant)", p99, "ms", burst, "ms", "burst", p99/burst)
		}
		rate := r.medianOf("start_rate")
		add("W4 "+r.Case+" start rate ÷ pgbench 32-client commits/s", rate, "/s", commits32, "/s", "pgbench", rate/commits32)
	}
	return rows
}
