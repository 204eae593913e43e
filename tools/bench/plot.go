package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// The plots are percentile spectra, as HdrHistogram draws them: the x axis is the
// percentile on a scale that gives each "nine" the same width (x = log10(1/(1−q))), so that
// the median, p99, p99.9 and the maximum all show; the y axis is the value, logarithmic when
// the values span more than a factor of 20. One line per repetition.

const (
	plotW, plotH                       = 760, 440
	marginL, marginR, marginT, marginB = 78, 44, 44, 116
	plotPoints                         = 600 // points drawn per line at most
)

// lineColors are the colours of successive lines (colour-blind safe, Okabe–Ito).
var lineColors = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"}

// plotLine is one distribution to draw.
type plotLine struct {
	name    string
	samples []float64 // sorted ascending
}

// writePercentilePlot draws the lines as an SVG percentile spectrum.
func writePercentilePlot(w io.Writer, title, label, unit string, lines []plotLine) error {
	var all []float64
	maxN := 0
	for _, l := range lines {
		all = append(all, l.samples...)
		maxN = max(maxN, len(l.samples))
	}
	if len(all) == 0 {
		return fmt.Errorf("plot %q: no samples", title)
	}
	lo, hi := slices.Min(all), slices.Max(all)
	positive := math.Inf(1)
	for _, v := range all {
		if v > 0 {
			positive = min(positive, v)
		}
	}
	// The log scale starts a decade below the first percentile, so that a few values near
	// zero do not squash the rest; smaller values are drawn at its bottom.
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	floor := max(positive, percentile(sorted, 0.01)/10)
	logY := positive < math.Inf(1) && hi/floor > 20
	var y axis
	if logY {
		y = logAxis(floor, hi)
	} else {
		y = linearAxis(min(lo, 0), hi)
	}
	// x from 0 (p0) to the nines the largest line can show, at least 2 (p99).
	xMax := math.Max(2, math.Ceil(math.Log10(float64(maxN))))
	px := func(x float64) float64 { return marginL + x/xMax*(plotW-marginL-marginR) }
	py := func(v float64) float64 {
		f := y.frac(v)
		return plotH - marginB - f*(plotH-marginT-marginB)
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, esc(title))

	// Grid and ticks.
	for _, t := range y.ticks {
		yy := py(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, yy, plotW-marginR, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", marginL-6, yy, esc(tickLabel(t)))
	}
	for nines := 0.0; nines <= xMax; nines++ {
		xx := px(nines)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", xx, marginT, xx, plotH-marginB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xx, plotH-marginB+16, percentLabel(nines))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n",
		marginL, marginT, plotW-marginL-marginR, plotH-marginT-marginB)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">percentile</text>`+"\n", (plotW+marginL-marginR)/2, plotH-marginB+34)
	fmt.Fprintf(&b, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n",
		(plotH-marginB+marginT)/2, esc(label+" ("+unit+")"))

	// Lines and legend.
	for i, l := range lines {
		if len(l.samples) == 0 {
			continue
		}
		color := lineColors[i%len(lineColors)]
		var pts []string
		for _, p := range spectrum(l.samples, plotPoints) {
			v := p.v
			if logY && v < y.min {
				v = y.min
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(math.Min(p.x, xMax)), py(v)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		s := summarize(l.samples)
		ly := plotH - marginB + 52 + i*16
		if i >= 4 { // a second column
			ly = plotH - marginB + 52 + (i-4)*16
		}
		lx := marginL
		if i >= 4 {
			lx = plotW / 2
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", lx, ly-4, lx+18, ly-4, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+24, ly, esc(fmt.Sprintf("%s: n=%d, p50 %s, p99 %s, max %s",
			l.name, s.N, formatValue(s.P50, unitKey(unit)), formatValue(s.P99, unitKey(unit)), formatValue(s.Max, unitKey(unit)))))
	}
	if logY && lo < y.min {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#666">values below %s are drawn at the bottom of the scale</text>`+"\n",
			marginL+6, plotH-marginB-6, esc(tickLabel(y.min)+" "+unit))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// unitKey maps a plot unit to formatValue's unit.
func unitKey(unit string) string {
	if unit == "ms" || unit == "µs" {
		return unit
	}
	return ""
}

// spectrumPoint is a point of a percentile spectrum: x in nines, v the value.
type spectrumPoint struct{ x, v float64 }

// spectrum returns at most about n points of the percentile spectrum of sorted samples,
// evenly spaced along x, ending with the maximum.
func spectrum(sorted []float64, n int) []spectrumPoint {
	total := len(sorted)
	xEnd := math.Log10(float64(total)) // the maximum sits at q = 1 − 1/total
	var out []spectrumPoint
	last := -1
	for k := 0; k <= n; k++ {
		x := xEnd * float64(k) / float64(n)
		q := 1 - math.Pow(10, -x)
		i := min(int(q*float64(total)), total-1)
		if i == last {
			continue
		}
		last = i
		out = append(out, spectrumPoint{x, sorted[i]})
	}
	if last != total-1 {
		out = append(out, spectrumPoint{xEnd, sorted[total-1]})
	}
	return out
}

// axis maps values to [0, 1] and knows its ticks.
type axis struct {
	min, max float64
	log      bool
	ticks    []float64
}

func (a axis) frac(v float64) float64 {
	if a.log {
		return (math.Log10(v) - math.Log10(a.min)) / (math.Log10(a.max) - math.Log10(a.min))
	}
	return (v - a.min) / (a.max - a.min)
}

// logAxis spans whole decades around [lo, hi] with ticks at 1, 2 and 5 of each.
func logAxis(lo, hi float64) axis {
	a := axis{log: true, min: math.Pow(10, math.Floor(math.Log10(lo))), max: math.Pow(10, math.Ceil(math.Log10(hi)))}
	if a.max <= a.min {
		a.max = a.min * 10
	}
	for d := a.min; d < a.max*1.001; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if t := d * m; t <= a.max*1.001 {
				a.ticks = append(a.ticks, t)
			}
		}
	}
	return a
}

// linearAxis spans [lo, hi] rounded out to a step of 1, 2 or 5 times a power of ten, with
// about six ticks.
func linearAxis(lo, hi float64) axis {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	a := axis{min: math.Floor(lo/step) * step, max: math.Ceil(hi/step) * step}
	for t := a.min; t <= a.max+step/2; t += step {
		a.ticks = append(a.ticks, t)
	}
	return a
}

// tickLabel renders an axis value compactly.
func tickLabel(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000 || math.Abs(v) < 0.01:
		return fmt.Sprintf("%g", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// percentLabel names the percentile of a number of nines: 0 → "0%", 1 → "90%", 2 → "99%".
func percentLabel(nines float64) string {
	if nines == 0 {
		return "0%"
	}
	q := 100 * (1 - math.Pow(10, -nines))
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", q), "0"), ".") + "%"
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func esc(s string) string { return xmlEscaper.Replace(s) }
