// Package figure draws the guidelines report's plots with gonum/plot and
// encodes them as PNG and SVG. It knows nothing of sweeps or analyses:
// package guidelines decides what each figure shows (rows, points,
// curves, labels, colours by verdict) and hands it plain data; this
// package decides how it looks. Values are as drawn (percentage points,
// millions of parameters); EDF curves take fractions and draw points.
package figure

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Tone is a bar's fill: what the verdict on its level was.
type Tone int

// Tones of an effects bar.
const (
	None    Tone = iota // inconclusive: pale
	Helps               // green
	Hurts               // red
	Unclear             // grey: no clear effect
)

var (
	colHelps   = color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff}
	colHurts   = color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff}
	colUnclear = color.RGBA{R: 0x95, G: 0xa5, B: 0xa6, A: 0xff}
	colNone    = color.RGBA{R: 0xd5, G: 0xdb, B: 0xdb, A: 0xff}
	colBand    = color.NRGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0x30}
	colClean   = color.RGBA{R: 0x29, G: 0x80, B: 0xb9, A: 0xff}
	colRobust  = color.RGBA{R: 0xd3, G: 0x54, B: 0x00, A: 0xff}
)

func (t Tone) color() color.Color {
	switch t {
	case Helps:
		return colHelps
	case Hurts:
		return colHurts
	case Unclear:
		return colUnclear
	}
	return colNone
}

// XY is a point.
type XY struct{ X, Y float64 }

func xys(pts []XY) plotter.XYs {
	out := make(plotter.XYs, len(pts))
	for i, p := range pts {
		out[i] = plotter.XY{X: p.X, Y: p.Y}
	}
	return out
}

// encode renders p at w×h inches as PNG and SVG.
func encode(p *plot.Plot, w, h float64) (png, svg []byte, err error) {
	if png, err = render(p, vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch, "png"); err != nil {
		return nil, nil, err
	}
	if svg, err = render(p, vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch, "svg"); err != nil {
		return nil, nil, err
	}
	return png, svg, nil
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

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
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

// Bar is one row of an effects plot.
type Bar struct {
	Label string
	Value float64
	// CI says whether the row has an interval, Low to High.
	CI        bool
	Low, High float64
	Tone      Tone
}

// Bars is an effects plot: one horizontal bar per row, top to bottom,
// with interval whiskers and a line at zero; with GapAt ≥ 0 a row
// labelled GapLabel stands before row GapAt for the rows left out. With
// no rows the plot is an empty frame.
type Bars struct {
	Title, XLabel string
	Rows          []Bar
	GapAt         int
	GapLabel      string
}

// Draw renders the plot at w×h inches.
func (b Bars) Draw(w, h float64) (png, svg []byte, err error) {
	p, err := b.plot()
	if err != nil {
		return nil, nil, err
	}
	return encode(p, w, h)
}

func (b Bars) plot() (*plot.Plot, error) {
	p := newPlot(b.Title, b.XLabel, "")
	n := len(b.Rows)
	if n == 0 {
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = -1, 1, 0, 1
		return p, nil
	}
	slot := func(i int) int { return i } // row i's slot from the top
	labels := make([]string, n+1)
	if b.GapAt >= 0 {
		slot = func(i int) int {
			if i >= b.GapAt {
				return i + 1
			}
			return i
		}
		labels[n-b.GapAt] = b.GapLabel
		n++
	}
	labels = labels[:n]
	var whiskers plotter.XErrors
	var wxy plotter.XYs
	lo, hi := 0.0, 0.0
	for i, r := range b.Rows {
		y := float64(n - 1 - slot(i)) // first row on top
		labels[n-1-slot(i)] = r.Label
		x := r.Value
		bar, err := plotter.NewPolygon(plotter.XYs{{X: 0, Y: y - 0.35}, {X: x, Y: y - 0.35}, {X: x, Y: y + 0.35}, {X: 0, Y: y + 0.35}})
		if err != nil {
			return nil, err
		}
		bar.Color = r.Tone.color()
		bar.LineStyle.Width = 0
		p.Add(bar)
		lo, hi = math.Min(lo, x), math.Max(hi, x)
		if r.CI {
			wxy = append(wxy, plotter.XY{X: x, Y: y})
			whiskers = append(whiskers, struct{ Low, High float64 }{x - r.Low, r.High - x})
			lo, hi = math.Min(lo, r.Low), math.Max(hi, r.High)
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

// Series is one legend entry's points.
type Series struct {
	Name   string
	Points []XY
}

// Scatter draws clean (blue circles) and robust (orange triangles)
// points, legend on top.
type Scatter struct {
	Title, XLabel, YLabel string
	Clean, Robust         Series
}

// Draw renders the plot at w×h inches.
func (s Scatter) Draw(w, h float64) (png, svg []byte, err error) {
	p := newPlot(s.Title, s.XLabel, s.YLabel)
	for _, st := range []struct {
		series Series
		col    color.Color
		shape  draw.GlyphDrawer
	}{{s.Clean, colClean, draw.CircleGlyph{}}, {s.Robust, colRobust, draw.TriangleGlyph{}}} {
		sc, err := plotter.NewScatter(xys(st.series.Points))
		if err != nil {
			return nil, nil, err
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = st.col, st.shape, vg.Points(3.5)
		p.Add(sc)
		p.Legend.Add(st.series.Name, sc)
	}
	p.Legend.Top = true
	padAxis(&p.X, 0.05)
	padAxis(&p.Y, 0.05)
	headroom(&p.Y)
	return encode(p, w, h)
}

// Variant is one variant's mean point, its label and its trials' points.
type Variant struct {
	X, Y     float64
	Label    string
	Baseline bool
	Trials   []XY
}

// Variants draws variant means (labelled; beyond 15 variants only the
// baseline, the 5 highest and the 3 lowest), the baseline as a black
// square and trials as small grey dots, legend on top, the axes padded
// by PadX and PadY of their span. With Band set, the x range it gives is
// shaded beneath the points when it lies near them (within the data's
// span of its ends), with BandLabel in the legend.
type Variants struct {
	Title, XLabel, YLabel string
	Points                []Variant
	PadX, PadY            float64
	Band                  *[2]float64
	BandLabel             string
}

// Draw renders the plot at w×h inches; banded says whether the band was
// drawn.
func (v Variants) Draw(w, h float64) (png, svg []byte, banded bool, err error) {
	p, banded, err := v.plot()
	if err != nil {
		return nil, nil, false, err
	}
	png, svg, err = encode(p, w, h)
	return png, svg, banded, err
}

func (v Variants) plot() (*plot.Plot, bool, error) {
	newVariantsPlot := func() *plot.Plot {
		p := newPlot(v.Title, v.XLabel, v.YLabel)
		p.Legend.Top = true
		return p
	}
	// A first pass finds the data's range; a band must be added before
	// the points so that it lies beneath them.
	probe := newVariantsPlot()
	if err := v.points(probe); err != nil {
		return nil, false, err
	}
	padAxis(&probe.X, v.PadX)
	padAxis(&probe.Y, v.PadY)
	headroom(&probe.Y)
	if v.Band == nil {
		return probe, false, nil
	}
	xmin, xmax, ymin, ymax := probe.X.Min, probe.X.Max, probe.Y.Min, probe.Y.Max
	// Shade the band only when it is near the data; points far from it
	// would otherwise be squeezed into a corner.
	span := math.Max(xmax-xmin, 1)
	b0, b1 := v.Band[0], v.Band[1]
	if b1 < xmin-span || b0 > xmax+span {
		return probe, false, nil
	}
	p := newVariantsPlot()
	band, err := plotter.NewPolygon(plotter.XYs{{X: b0, Y: ymin}, {X: b1, Y: ymin}, {X: b1, Y: ymax}, {X: b0, Y: ymax}})
	if err != nil {
		return nil, false, err
	}
	band.Color = colBand
	band.LineStyle.Width = 0
	p.Add(band)
	if err := v.points(p); err != nil {
		return nil, false, err
	}
	p.Legend.Add(v.BandLabel, band)
	p.X.Min, p.X.Max = math.Min(xmin, b0-0.5), math.Max(xmax, b1+0.5)
	p.Y.Min, p.Y.Max = ymin, ymax
	return p, true, nil
}

// maxLabels: many labels overlap into a smear, so beyond it only the
// baseline and the highest and lowest points are named.
const maxLabels = 15

// points adds the variant means with labels and the trials' dots.
func (v Variants) points(p *plot.Plot) error {
	var means, dots, base plotter.XYs
	var names []string
	for _, g := range v.Points {
		pt := plotter.XY{X: g.X, Y: g.Y}
		if g.Baseline {
			base = append(base, pt)
		}
		means = append(means, pt)
		names = append(names, g.Label)
		for _, t := range g.Trials {
			dots = append(dots, plotter.XY{X: t.X, Y: t.Y})
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
	if len(means) > maxLabels {
		order := make([]int, len(means))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(i, j int) int { return cmp.Compare(means[j].Y, means[i].Y) })
		keep := map[int]bool{}
		for k, i := range order {
			if k < 5 || k >= len(order)-3 || v.Points[i].Baseline {
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

// Curve is one EDF: sorted fractions, drawn in percentage points.
type Curve struct {
	Label  string
	Values []float64
	// Baseline curves are black and dashed; with EDFs.Grey > 0 the curves
	// not Coloured are drawn thin and grey beneath the others.
	Baseline, Coloured bool
}

// EDFs draws step functions of empirical distributions, legend bottom
// right; Grey counts the curves drawn grey (0: every curve in colour).
type EDFs struct {
	Title, XLabel, YLabel string
	Curves                []Curve
	Grey                  int
}

// Draw renders the plot at w×h inches.
func (e EDFs) Draw(w, h float64) (png, svg []byte, err error) {
	p, err := e.plot()
	if err != nil {
		return nil, nil, err
	}
	return encode(p, w, h)
}

func (e EDFs) plot() (*plot.Plot, error) {
	p := newPlot(e.Title, e.XLabel, e.YLabel)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range e.Curves {
		if n := len(c.Values); n > 0 {
			lo, hi = math.Min(lo, c.Values[0]), math.Max(hi, c.Values[n-1])
		}
	}
	if math.IsInf(lo, 0) {
		return p, nil
	}
	span := math.Max(hi-lo, 0.01)
	lo, hi = 100*(lo-0.1*span), 100*(hi+0.1*span)
	if e.Grey > 0 {
		if err := e.greyCurves(p, lo, hi); err != nil {
			return nil, err
		}
	}
	k := 0 // colour index: the colours of a plot of few curves are unchanged
	for i, c := range e.Curves {
		if len(c.Values) == 0 || (e.Grey > 0 && !c.Coloured) {
			continue
		}
		l, err := plotter.NewLine(steps(c, lo, hi))
		if err != nil {
			return nil, err
		}
		l.LineStyle.Width = vg.Points(2)
		l.LineStyle.Color = plotutil.Color(i)
		if e.Grey > 0 {
			l.LineStyle.Color = plotutil.Color(k)
			k++
		}
		if c.Baseline {
			l.LineStyle.Color = color.Black
			l.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", c.Label, len(c.Values)), l)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.X.Min, p.X.Max = lo, hi
	p.Y.Min, p.Y.Max = 0, 1.02
	return p, nil
}

// greyCurves adds the curves not drawn in colour, beneath the others,
// with one legend entry for all.
func (e EDFs) greyCurves(p *plot.Plot, lo, hi float64) error {
	var first *plotter.Line
	for _, c := range e.Curves {
		if c.Coloured || len(c.Values) == 0 {
			continue
		}
		l, err := plotter.NewLine(steps(c, lo, hi))
		if err != nil {
			return err
		}
		l.LineStyle.Width = vg.Points(0.6)
		l.LineStyle.Color = color.Gray{Y: 0xbb}
		p.Add(l)
		if first == nil {
			first = l
		}
	}
	if first != nil {
		p.Legend.Add(fmt.Sprintf("%d more levels", e.Grey), first)
	}
	return nil
}

// steps is a curve's step function from lo to hi, in points.
func steps(c Curve, lo, hi float64) plotter.XYs {
	n := len(c.Values)
	xys := plotter.XYs{{X: lo, Y: 0}}
	for k, v := range c.Values {
		x := 100 * v
		xys = append(xys, plotter.XY{X: x, Y: float64(k) / float64(n)}, plotter.XY{X: x, Y: float64(k+1) / float64(n)})
	}
	return append(xys, plotter.XY{X: hi, Y: 1})
}
