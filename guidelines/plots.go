package guidelines

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
)

// Figure is one rendered plot.
type Figure struct {
	Name    string // file stem under plots/, e.g. "effects-robust"
	Title   string
	Caption string
	PNG     []byte
	SVG     []byte
}

var (
	colHelps   = color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff}
	colHurts   = color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff}
	colUnclear = color.RGBA{R: 0x95, G: 0xa5, B: 0xa6, A: 0xff}
	colNone    = color.RGBA{R: 0xd5, G: 0xdb, B: 0xdb, A: 0xff}
	colBand    = color.NRGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0x30}
	colClean   = color.RGBA{R: 0x29, G: 0x80, B: 0xb9, A: 0xff}
	colRobust  = color.RGBA{R: 0xd3, G: 0x54, B: 0x00, A: 0xff}
)

func verdictColor(v string) color.Color {
	switch v {
	case Helps:
		return colHelps
	case Hurts:
		return colHurts
	case NoClearEffect:
		return colUnclear
	}
	return colNone
}

// Figures renders every plot of the analysis.
func Figures(a *Analysis) ([]Figure, error) {
	var out []Figure
	add := func(name, title, caption string, p *plot.Plot, w, h vg.Length, err error) error {
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		f := Figure{Name: name, Title: title, Caption: caption}
		if f.PNG, err = render(p, w, h, "png"); err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		if f.SVG, err = render(p, w, h, "svg"); err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		out = append(out, f)
		return nil
	}
	width := 8 * vg.Inch
	rows, gapAt := plotEffects(a)
	slots := len(rows)
	clipped := ""
	if gapAt >= 0 {
		slots++
		clipped = fmt.Sprintf(" Of the %d levels only the %d best and %d worst by the robust effect are drawn; every level is in %s.", len(a.Effects), gapAt, len(rows)-gapAt, EffectsCSVFile)
	}
	effH := vg.Length(max(3, 1.2+0.32*float64(slots))) * vg.Inch
	for _, m := range []string{a.RobustMetric, results.CleanAcc} {
		p, err := effectsPlot(a, m, rows, gapAt)
		kind := "robust"
		if m == results.CleanAcc {
			kind = "clean"
		}
		if err := add("effects-"+kind, "Effect on "+MetricName(m),
			fmt.Sprintf("Change in %s relative to the baseline per factor level, in percentage points, with %s; no whisker: a single seed. Bars coloured by the robust verdict: green helps, red hurts, grey no clear effect, pale inconclusive.%s", MetricName(m), whiskerKind(a), clipped),
			p, width, effH, err); err != nil {
			return nil, err
		}
	}
	p, err := scatterPlot(a, "params")
	if err := add("accuracy-vs-params", "Accuracy vs parameters", "Every finished trial: clean (blue circles) and robust (orange triangles) accuracy against its parameter count.", p, width, 5*vg.Inch, err); err != nil {
		return nil, err
	}
	p, err = scatterPlot(a, "macs")
	if err := add("accuracy-vs-macs", "Accuracy vs MACs", "Every finished trial: clean and robust accuracy against multiply-accumulates per image.", p, width, 5*vg.Inch, err); err != nil {
		return nil, err
	}
	p, banded, err := ratioPlot(a)
	band := fmt.Sprintf("the shaded band is the paper's %.1f–%.1f", PaperRatioBand[0], PaperRatioBand[1])
	if !banded {
		band = fmt.Sprintf("the paper's band %.1f–%.1f lies far outside these ratios and is not drawn", PaperRatioBand[0], PaperRatioBand[1])
	}
	if err := add("robust-vs-ratio", "Robust accuracy vs width/depth ratio",
		fmt.Sprintf("Mean %s per variant (labelled; with many variants only the best, the worst and the baseline) and per trial (small dots) against the width-to-depth ratio; %s.", MetricName(a.RobustMetric), band),
		p, width, 5*vg.Inch, err); err != nil {
		return nil, err
	}
	p, err = tradeoffPlot(a)
	if err := add("clean-vs-robust", "Clean vs robust accuracy", "Mean clean against mean robust accuracy per variant (labelled, or only the best, the worst and the baseline when there are many; the baseline in black), trials as small dots.", p, width, 5*vg.Inch, err); err != nil {
		return nil, err
	}
	for _, set := range a.EDFs {
		p, err := edfPlot(a, set)
		caption := fmt.Sprintf("Empirical distribution of robust error (1 − %s) over the trials of each level of %s; a curve further left and higher is a better design space.", MetricName(a.RobustMetric), set.Factor)
		if _, grey := edfColours(set); grey > 0 {
			caption += fmt.Sprintf(" Of its %d levels the %d best and %d worst (mean robust error) are drawn in colour, the other %d thin and grey.", levelCurves(set), maxCurves/2, maxCurves/2, grey)
		}
		if err := add("edf-"+fileSafe(set.Factor), "EDF of robust error: "+set.Factor, caption,
			p, width, 4.5*vg.Inch, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// whiskerKind names the intervals the effects plots draw: the table's
// unadjusted ones, from the paired model when the analysis has one.
func whiskerKind(a *Analysis) string {
	if a.Model != nil {
		return fmt.Sprintf("the table's %.0f%% Student-t intervals from the paired model (unadjusted; verdicts read the adjusted interval)", 100*a.Confidence)
	}
	return fmt.Sprintf("%.0f%% percentile-bootstrap intervals", 100*a.Confidence)
}

func render(p *plot.Plot, w, h vg.Length, format string) ([]byte, error) {
	wt, err := p.WriterTo(w, h, format)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
}

// plotEffects are the levels the effects plots draw, top to bottom:
// every level grouped by factor in factor order; or, beyond maxRows, the
// best and worst maxRows/2 by the robust effect in rank order, with
// gapAt the row before which the others are counted (−1 for no gap).
func plotEffects(a *Analysis) (rows []Effect, gapAt int) {
	if len(a.Effects) > maxRows {
		return ends(a.Effects, maxRows)
	}
	rows = slices.Clone(a.Effects)
	slices.SortStableFunc(rows, func(x, y Effect) int {
		if c := compareFactors(x.Factor, y.Factor); c != 0 {
			return c
		}
		return strings.Compare(x.Level, y.Level)
	})
	return rows, -1
}

// effectsPlot draws one horizontal bar per level of rows, top to bottom,
// with interval whiskers, and at gapAt a row naming the levels left out.
func effectsPlot(a *Analysis, metric string, effects []Effect, gapAt int) (*plot.Plot, error) {
	p := newPlot(fmt.Sprintf("Effect on %s vs baseline", MetricName(metric)), "Δ "+MetricName(metric)+" (percentage points)", "")
	n := len(effects)
	if n == 0 {
		p.Title.Text += ": no variant has finished yet"
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = -1, 1, 0, 1
		return p, nil
	}
	slot := func(i int) int { return i } // effect i's row from the top
	labels := make([]string, n+1)
	if gapAt >= 0 {
		p.Title.Text += fmt.Sprintf(": the %d best and %d worst of %d levels", gapAt, n-gapAt, len(a.Effects))
		slot = func(i int) int {
			if i >= gapAt {
				return i + 1
			}
			return i
		}
		labels[n-gapAt] = fmt.Sprintf("(%d more levels)", len(a.Effects)-n)
		n++
	}
	labels = labels[:n]
	var whiskers plotter.XErrors
	var wxy plotter.XYs
	lo, hi := 0.0, 0.0
	for i, e := range effects {
		y := float64(n - 1 - slot(i)) // first effect on top
		labels[n-1-slot(i)] = e.Label()
		est, _ := e.Estimate(metric)
		x := Points(est.Effect)
		bar, err := plotter.NewPolygon(plotter.XYs{{X: 0, Y: y - 0.35}, {X: x, Y: y - 0.35}, {X: x, Y: y + 0.35}, {X: 0, Y: y + 0.35}})
		if err != nil {
			return nil, err
		}
		bar.Color = verdictColor(e.Verdict)
		bar.LineStyle.Width = 0
		p.Add(bar)
		lo, hi = math.Min(lo, x), math.Max(hi, x)
		if est.CI != nil {
			wxy = append(wxy, plotter.XY{X: x, Y: y})
			whiskers = append(whiskers, struct{ Low, High float64 }{x - Points(est.CI.Low), Points(est.CI.High) - x})
			lo, hi = math.Min(lo, Points(est.CI.Low)), math.Max(hi, Points(est.CI.High))
		}
	}
	if len(wxy) > 0 {
		eb, err := plotter.NewXErrorBars(xyErrs{wxy, whiskers})
		if err != nil {
			return nil, err
		}
		eb.LineStyle.Width = vg.Points(1.2)
		eb.CapWidth = vg.Points(6)
		p.Add(eb)
	}
	pad := math.Max(0.5, 0.08*(hi-lo))
	p.X.Min, p.X.Max = lo-pad, hi+pad
	zero, err := plotter.NewLine(plotter.XYs{{X: 0, Y: -0.6}, {X: 0, Y: float64(n) - 0.4}})
	if err != nil {
		return nil, err
	}
	zero.LineStyle.Width = vg.Points(1)
	p.Add(zero)
	p.NominalY(labels...)
	p.Y.Min, p.Y.Max = -0.6, float64(n)-0.4
	return p, nil
}

type xyErrs struct {
	plotter.XYs
	plotter.XErrors
}

// scatterPlot draws clean and robust accuracy of every trial against its
// parameters or MACs.
func scatterPlot(a *Analysis, by string) (*plot.Plot, error) {
	x := func(g *Group) float64 { return float64(g.Params) / 1e6 }
	xl := "parameters (millions)"
	title := "Accuracy vs parameters"
	if by == "macs" {
		x = func(g *Group) float64 { return float64(g.MACs) / 1e6 }
		xl, title = "MACs per image (millions)", "Accuracy vs MACs"
	}
	p := newPlot(title, xl, "accuracy (%)")
	for _, s := range []struct {
		metric string
		col    color.Color
		shape  draw.GlyphDrawer
	}{{results.CleanAcc, colClean, draw.CircleGlyph{}}, {a.RobustMetric, colRobust, draw.TriangleGlyph{}}} {
		var xys plotter.XYs
		for _, g := range a.Groups {
			for _, v := range g.Values[s.metric] {
				xys = append(xys, plotter.XY{X: x(g), Y: Points(v)})
			}
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = s.col, s.shape, vg.Points(3.5)
		p.Add(sc)
		p.Legend.Add(MetricName(s.metric), sc)
	}
	p.Legend.Top = true
	padAxis(&p.X, 0.05)
	padAxis(&p.Y, 0.05)
	headroom(&p.Y)
	return p, nil
}

// padAxis widens an axis so edge points and a degenerate range still show.
func padAxis(ax *plot.Axis, frac float64) {
	span := ax.Max - ax.Min
	if span <= 0 {
		span = math.Max(math.Abs(ax.Max), 1) * 0.1
	}
	ax.Min -= frac * span
	ax.Max += frac * span
}

// headroom leaves the top of a plot free for its legend.
func headroom(ax *plot.Axis) { ax.Max += 0.15 * (ax.Max - ax.Min) }

func variantLabel(g *Group) string {
	if g.Factor == results.BaselineFactor {
		return "baseline"
	}
	if g.Factor == RandomFactor {
		return g.Variant
	}
	return g.Factor + "=" + g.Level
}

// labelled adds per-variant mean points with labels and per-trial dots.
func labelled(p *plot.Plot, a *Analysis, x func(*Group) float64, y func(*Group) (mean float64, trials []float64), xTrial func(*Group, int) float64) error {
	var means, dots, base plotter.XYs
	var names []string
	for _, g := range a.Groups {
		m, ts := y(g)
		pt := plotter.XY{X: x(g), Y: m}
		if g == a.Baseline {
			base = append(base, pt)
		}
		means = append(means, pt)
		names = append(names, variantLabel(g))
		for i, t := range ts {
			dots = append(dots, plotter.XY{X: xTrial(g, i), Y: t})
		}
	}
	d, err := plotter.NewScatter(dots)
	if err != nil {
		return err
	}
	d.GlyphStyle.Color, d.GlyphStyle.Radius = color.Gray{Y: 0x99}, vg.Points(1.8)
	m, err := plotter.NewScatter(means)
	if err != nil {
		return err
	}
	m.GlyphStyle.Color, m.GlyphStyle.Radius, m.GlyphStyle.Shape = colRobust, vg.Points(4), draw.CircleGlyph{}
	b, err := plotter.NewScatter(base)
	if err != nil {
		return err
	}
	b.GlyphStyle.Color, b.GlyphStyle.Radius, b.GlyphStyle.Shape = color.Black, vg.Points(5), draw.BoxGlyph{}
	// Many labels overlap into a smear: beyond maxLabels variants only the
	// baseline and the highest and lowest points are named.
	const maxLabels = 15
	if len(means) > maxLabels {
		order := make([]int, len(means))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(i, j int) int { return cmp.Compare(means[j].Y, means[i].Y) })
		keep := map[int]bool{}
		for k, i := range order {
			if k < 5 || k >= len(order)-3 || a.Groups[i] == a.Baseline {
				keep[i] = true
			}
		}
		for i := range names {
			if !keep[i] {
				names[i] = ""
			}
		}
	}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: means, Labels: names})
	if err != nil {
		return err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].Font.Size = vg.Points(8)
	}
	lb.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(2)}
	p.Add(d, m, b, lb)
	p.Legend.Add("variant mean", m)
	p.Legend.Add("baseline", b)
	p.Legend.Add("trial", d)
	return nil
}

func ratioPlot(a *Analysis) (*plot.Plot, bool, error) {
	var groups []*Group
	for _, g := range a.Groups {
		if g.WidthDepthRatio > 0 {
			groups = append(groups, g)
		}
	}
	sub := *a
	sub.Groups = groups
	if slices.Index(groups, a.Baseline) < 0 {
		sub.Baseline = nil
	}
	drawPoints := func(p *plot.Plot) error {
		return labelled(p, &sub, func(g *Group) float64 { return g.WidthDepthRatio },
			func(g *Group) (float64, []float64) {
				return Points(g.Mean[a.RobustMetric]), scale(g.Values[a.RobustMetric])
			},
			func(g *Group, _ int) float64 { return g.WidthDepthRatio })
	}
	newRatioPlot := func() *plot.Plot {
		p := newPlot("Robust accuracy vs width/depth ratio", "width/depth ratio (mean of width ÷ depth, all stages but the last)", MetricName(a.RobustMetric)+" (%)")
		p.Legend.Top = true
		return p
	}
	// A first pass finds the data's range; the band must be added before
	// the points so that it lies beneath them.
	probe := newRatioPlot()
	if err := drawPoints(probe); err != nil {
		return nil, false, err
	}
	padAxis(&probe.X, 0.08)
	padAxis(&probe.Y, 0.1)
	headroom(&probe.Y)
	xmin, xmax, ymin, ymax := probe.X.Min, probe.X.Max, probe.Y.Min, probe.Y.Max
	// Shade the paper's band only when it is near the data; networks whose
	// ratios are far from it would otherwise be squeezed into a corner.
	span := math.Max(xmax-xmin, 1)
	b0, b1 := PaperRatioBand[0], PaperRatioBand[1]
	if b1 < xmin-span || b0 > xmax+span {
		return probe, false, nil
	}
	p := newRatioPlot()
	band, err := plotter.NewPolygon(plotter.XYs{{X: b0, Y: ymin}, {X: b1, Y: ymin}, {X: b1, Y: ymax}, {X: b0, Y: ymax}})
	if err != nil {
		return nil, false, err
	}
	band.Color = colBand
	band.LineStyle.Width = 0
	p.Add(band)
	if err := drawPoints(p); err != nil {
		return nil, false, err
	}
	p.Legend.Add(fmt.Sprintf("paper's band %.1f–%.1f", b0, b1), band)
	p.X.Min, p.X.Max = math.Min(xmin, b0-0.5), math.Max(xmax, b1+0.5)
	p.Y.Min, p.Y.Max = ymin, ymax
	return p, true, nil
}

func scale(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = Points(x)
	}
	return out
}

func tradeoffPlot(a *Analysis) (*plot.Plot, error) {
	p := newPlot("Clean vs robust accuracy", "clean accuracy (%)", MetricName(a.RobustMetric)+" (%)")
	err := labelled(p, a, func(g *Group) float64 { return Points(g.Mean[results.CleanAcc]) },
		func(g *Group) (float64, []float64) {
			return Points(g.Mean[a.RobustMetric]), scale(g.Values[a.RobustMetric])
		},
		func(g *Group, i int) float64 { return Points(g.Values[results.CleanAcc][i]) })
	if err != nil {
		return nil, err
	}
	p.Legend.Top = true
	padAxis(&p.X, 0.12)
	padAxis(&p.Y, 0.12)
	headroom(&p.Y)
	return p, nil
}

// edfPlot draws each level's EDF as a step function.
func edfPlot(a *Analysis, set FactorEDFs) (*plot.Plot, error) {
	p := newPlot("EDF of robust error: "+set.Factor, "robust error, 1 − "+MetricName(a.RobustMetric)+" (%)", "share of trials ≤ error")
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range set.Curves {
		if c.N > 0 {
			lo, hi = math.Min(lo, c.Values[0]), math.Max(hi, c.Values[c.N-1])
		}
	}
	if math.IsInf(lo, 0) {
		return p, nil
	}
	span := math.Max(hi-lo, 0.01)
	lo, hi = Points(lo-0.1*span), Points(hi+0.1*span)
	coloured, grey := edfColours(set)
	if grey > 0 {
		// The levels beyond the best and worst, beneath the others, with
		// one legend entry for all.
		var first *plotter.Line
		for i, c := range set.Curves {
			if coloured[i] || c.N == 0 {
				continue
			}
			l, err := plotter.NewLine(edfSteps(c, lo, hi))
			if err != nil {
				return nil, err
			}
			l.LineStyle.Width = vg.Points(0.6)
			l.LineStyle.Color = color.Gray{Y: 0xbb}
			p.Add(l)
			if first == nil {
				first = l
			}
		}
		if first != nil {
			p.Legend.Add(fmt.Sprintf("%d more levels", grey), first)
		}
	}
	k := 0 // colour index: the colours of a plot of few levels are unchanged
	for i, c := range set.Curves {
		if c.N == 0 || (grey > 0 && !coloured[i]) {
			continue
		}
		l, err := plotter.NewLine(edfSteps(c, lo, hi))
		if err != nil {
			return nil, err
		}
		l.LineStyle.Width = vg.Points(2)
		l.LineStyle.Color = plotutil.Color(i)
		if grey > 0 {
			l.LineStyle.Color = plotutil.Color(k)
			k++
		}
		if c.Label == "baseline" {
			l.LineStyle.Color = color.Black
			l.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", c.Label, c.N), l)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.X.Min, p.X.Max = lo, hi
	p.Y.Min, p.Y.Max = 0, 1.02
	return p, nil
}

// edfSteps is an EDF's step function from lo to hi, in points.
func edfSteps(c study.EDF, lo, hi float64) plotter.XYs {
	xys := plotter.XYs{{X: lo, Y: 0}}
	for k, v := range c.Values {
		x := Points(v)
		xys = append(xys, plotter.XY{X: x, Y: float64(k) / float64(c.N)}, plotter.XY{X: x, Y: float64(k+1) / float64(c.N)})
	}
	return append(xys, plotter.XY{X: hi, Y: 1})
}

// levelCurves counts a set's curves of levels (the baseline's aside).
func levelCurves(set FactorEDFs) int {
	n := 0
	for _, c := range set.Curves {
		if c.Label != "baseline" {
			n++
		}
	}
	return n
}

// edfColours picks the curves an EDF plot of more than maxCurves levels
// draws in colour — the baseline and the maxCurves/2 levels of lowest
// and of highest mean robust error — and counts the rest (0 when every
// curve is drawn in colour).
func edfColours(set FactorEDFs) (coloured []bool, grey int) {
	n := levelCurves(set)
	if n <= maxCurves {
		return nil, 0
	}
	var levels []int
	coloured = make([]bool, len(set.Curves))
	for i, c := range set.Curves {
		if c.Label == "baseline" {
			coloured[i] = true
		} else {
			levels = append(levels, i)
		}
	}
	meanErr := func(i int) float64 { return study.Mean(set.Curves[i].Values) }
	slices.SortStableFunc(levels, func(x, y int) int { return cmp.Compare(meanErr(x), meanErr(y)) })
	for k, i := range levels {
		if k < maxCurves/2 || k >= len(levels)-maxCurves/2 {
			coloured[i] = true
		}
	}
	return coloured, n - maxCurves
}
