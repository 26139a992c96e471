package guidelines

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/robarch/robarch/guidelines/figure"
	"github.com/robarch/robarch/guidelines/paper"
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

// The report's figures: what each shows is decided here, from the
// analysis; package figure draws them.

// figure widths and heights, in inches.
const (
	figWidth      = 8
	scatterHeight = 5
	edfHeight     = 4.5
)

// Figures renders every plot of the analysis.
func Figures(a *Analysis) ([]Figure, error) {
	var out []Figure
	add := func(name, title, caption string, png, svg []byte, err error) error {
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		out = append(out, Figure{Name: name, Title: title, Caption: caption, PNG: png, SVG: svg})
		return nil
	}
	rows, gapAt := plotEffects(a)
	slots := len(rows)
	clipped := ""
	if gapAt >= 0 {
		slots++
		clipped = fmt.Sprintf(" Of the %d levels only the %d best and %d worst by the robust effect are drawn; every level is in %s.", len(a.Effects), gapAt, len(rows)-gapAt, EffectsCSVFile)
	}
	effH := max(3, 1.2+0.32*float64(slots))
	for _, m := range []string{a.RobustMetric, results.CleanAcc} {
		png, svg, err := effectsBars(a, m, rows, gapAt).Draw(figWidth, effH)
		kind := "robust"
		if m == results.CleanAcc {
			kind = "clean"
		}
		if err := add("effects-"+kind, "Effect on "+MetricName(m),
			fmt.Sprintf("Change in %s relative to the baseline per factor level, in percentage points, with %s; no whisker: a single seed. Bars coloured by the robust verdict: green helps, red hurts, grey no clear effect, pale inconclusive.%s", MetricName(m), whiskerKind(a), clipped),
			png, svg, err); err != nil {
			return nil, err
		}
	}
	png, svg, err := scatterPlot(a, "params").Draw(figWidth, scatterHeight)
	if err := add("accuracy-vs-params", "Accuracy vs parameters", "Every finished trial: clean (blue circles) and robust (orange triangles) accuracy against its parameter count.", png, svg, err); err != nil {
		return nil, err
	}
	png, svg, err = scatterPlot(a, "macs").Draw(figWidth, scatterHeight)
	if err := add("accuracy-vs-macs", "Accuracy vs MACs", "Every finished trial: clean and robust accuracy against multiply-accumulates per image.", png, svg, err); err != nil {
		return nil, err
	}
	png, svg, banded, err := ratioPlot(a).Draw(figWidth, scatterHeight)
	band := fmt.Sprintf("the shaded band is the paper's %.1f–%.1f", paper.RatioBand[0], paper.RatioBand[1])
	if !banded {
		band = fmt.Sprintf("the paper's band %.1f–%.1f lies far outside these ratios and is not drawn", paper.RatioBand[0], paper.RatioBand[1])
	}
	if err := add("robust-vs-ratio", "Robust accuracy vs width/depth ratio",
		fmt.Sprintf("Mean %s per variant (labelled; with many variants only the best, the worst and the baseline) and per trial (small dots) against the width-to-depth ratio; %s.", MetricName(a.RobustMetric), band),
		png, svg, err); err != nil {
		return nil, err
	}
	png, svg, _, err = tradeoffPlot(a).Draw(figWidth, scatterHeight)
	if err := add("clean-vs-robust", "Clean vs robust accuracy", "Mean clean against mean robust accuracy per variant (labelled, or only the best, the worst and the baseline when there are many; the baseline in black), trials as small dots.", png, svg, err); err != nil {
		return nil, err
	}
	for _, set := range a.EDFs {
		png, svg, err := edfPlot(a, set).Draw(figWidth, edfHeight)
		caption := fmt.Sprintf("Empirical distribution of robust error (1 − %s) over the trials of each level of %s; a curve further left and higher is a better design space.", MetricName(a.RobustMetric), set.Factor)
		if _, grey := edfColours(set); grey > 0 {
			caption += fmt.Sprintf(" Of its %d levels the %d best and %d worst (mean robust error) are drawn in colour, the other %d thin and grey.", levelCurves(set), maxCurves/2, maxCurves/2, grey)
		}
		if err := add("edf-"+fileSafe(set.Factor), "EDF of robust error: "+set.Factor, caption, png, svg, err); err != nil {
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

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
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

// verdictTone is a bar's colour by the robust verdict.
func verdictTone(v string) figure.Tone {
	switch v {
	case Helps:
		return figure.Helps
	case Hurts:
		return figure.Hurts
	case NoClearEffect:
		return figure.Unclear
	}
	return figure.None
}

// effectsBars is one bar per level of rows on metric, with interval
// whiskers, and at gapAt a row naming the levels left out.
func effectsBars(a *Analysis, metric string, effects []Effect, gapAt int) figure.Bars {
	b := figure.Bars{Title: fmt.Sprintf("Effect on %s vs baseline", MetricName(metric)),
		XLabel: "Δ " + MetricName(metric) + " (percentage points)", GapAt: gapAt}
	if len(effects) == 0 {
		b.Title += ": no variant has finished yet"
		return b
	}
	if gapAt >= 0 {
		b.Title += fmt.Sprintf(": the %d best and %d worst of %d levels", gapAt, len(effects)-gapAt, len(a.Effects))
		b.GapLabel = fmt.Sprintf("(%d more levels)", len(a.Effects)-len(effects))
	}
	for _, e := range effects {
		est, _ := e.Estimate(metric)
		r := figure.Bar{Label: e.Label(), Value: Points(est.Effect), Tone: verdictTone(e.Verdict)}
		if est.CI != nil {
			r.CI, r.Low, r.High = true, Points(est.CI.Low), Points(est.CI.High)
		}
		b.Rows = append(b.Rows, r)
	}
	return b
}

// scatterPlot is clean and robust accuracy of every trial against its
// parameters or MACs.
func scatterPlot(a *Analysis, by string) figure.Scatter {
	x := func(g *Group) float64 { return float64(g.Params) / 1e6 }
	s := figure.Scatter{Title: "Accuracy vs parameters", XLabel: "parameters (millions)", YLabel: "accuracy (%)"}
	if by == "macs" {
		x = func(g *Group) float64 { return float64(g.MACs) / 1e6 }
		s.XLabel, s.Title = "MACs per image (millions)", "Accuracy vs MACs"
	}
	series := func(metric string) figure.Series {
		out := figure.Series{Name: MetricName(metric)}
		for _, g := range a.Groups {
			for _, v := range g.Values[metric] {
				out.Points = append(out.Points, figure.XY{X: x(g), Y: Points(v)})
			}
		}
		return out
	}
	s.Clean, s.Robust = series(results.CleanAcc), series(a.RobustMetric)
	return s
}

func variantLabel(g *Group) string {
	if g.Factor == results.BaselineFactor {
		return "baseline"
	}
	if g.Factor == RandomFactor {
		return g.Variant
	}
	return g.Factor + "=" + g.Level
}

// variantPoints are the groups' mean points (x, y) and their trials'
// (xTrial, y of each trial), labelled.
func variantPoints(a *Analysis, groups []*Group, x func(*Group) float64, y func(*Group) (mean float64, trials []float64), xTrial func(*Group, int) float64) []figure.Variant {
	var out []figure.Variant
	for _, g := range groups {
		m, ts := y(g)
		v := figure.Variant{X: x(g), Y: m, Label: variantLabel(g), Baseline: g == a.Baseline}
		for i, t := range ts {
			v.Trials = append(v.Trials, figure.XY{X: xTrial(g, i), Y: t})
		}
		out = append(out, v)
	}
	return out
}

// robustPoints are a group's mean robust accuracy and its trials', in
// points.
func robustPoints(a *Analysis) func(g *Group) (float64, []float64) {
	return func(g *Group) (float64, []float64) {
		return Points(g.Mean[a.RobustMetric]), scale(g.Values[a.RobustMetric])
	}
}

// ratioPlot is robust accuracy against the width-to-depth ratio of the
// variants that have one, over the paper's band when it is near.
func ratioPlot(a *Analysis) figure.Variants {
	var groups []*Group
	for _, g := range a.Groups {
		if g.WidthDepthRatio > 0 {
			groups = append(groups, g)
		}
	}
	ratio := func(g *Group) float64 { return g.WidthDepthRatio }
	band := paper.RatioBand
	return figure.Variants{Title: "Robust accuracy vs width/depth ratio",
		XLabel: "width/depth ratio (mean of width ÷ depth, all stages but the last)", YLabel: MetricName(a.RobustMetric) + " (%)",
		Points: variantPoints(a, groups, ratio, robustPoints(a), func(g *Group, _ int) float64 { return g.WidthDepthRatio }),
		PadX:   0.08, PadY: 0.1, Band: &band, BandLabel: fmt.Sprintf("paper's band %.1f–%.1f", band[0], band[1])}
}

func scale(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = Points(x)
	}
	return out
}

// tradeoffPlot is mean clean against mean robust accuracy per variant.
func tradeoffPlot(a *Analysis) figure.Variants {
	return figure.Variants{Title: "Clean vs robust accuracy", XLabel: "clean accuracy (%)", YLabel: MetricName(a.RobustMetric) + " (%)",
		Points: variantPoints(a, a.Groups, func(g *Group) float64 { return Points(g.Mean[results.CleanAcc]) }, robustPoints(a),
			func(g *Group, i int) float64 { return Points(g.Values[results.CleanAcc][i]) }),
		PadX: 0.12, PadY: 0.12}
}

// edfPlot is each level's EDF of robust error as a step function, the
// best and worst in colour when there are many.
func edfPlot(a *Analysis, set FactorEDFs) figure.EDFs {
	coloured, grey := edfColours(set)
	e := figure.EDFs{Title: "EDF of robust error: " + set.Factor, XLabel: "robust error, 1 − " + MetricName(a.RobustMetric) + " (%)",
		YLabel: "share of trials ≤ error", Grey: grey}
	for i, c := range set.Curves {
		e.Curves = append(e.Curves, figure.Curve{Label: c.Label, Values: c.Values, Baseline: c.Label == "baseline",
			Coloured: grey > 0 && coloured[i]})
	}
	return e
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
