package guidelines

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"

	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

// Random-sampled sweeps change every factor at once, so a level cannot be
// compared with the baseline directly. The analysis fits one additive
// least-squares model per metric over all finished trials (baseline
// included):
//
//	metric = b0 + r·[random sample] + Σ_factor Σ_level≠ref β(factor, level)·[sample has level]
//
// Each factor has a reference level: the level that equals the baseline's
// own setting (found by copying that level's part of a sample's spec into
// the baseline and seeing nothing change), else the most frequent one. β
// then estimates the change from the reference level to that level with
// the other factors held fixed. The model ignores interactions; that is
// the modest, documented choice. Intervals come from a case bootstrap
// (whole trials resampled, the model refitted). A level whose indicator is
// a linear combination of others (e.g. two levels always sampled
// together) is not identifiable and is reported as such.

// minBootstrapDF is the residual degrees of freedom a random design's
// case bootstrap needs before it forms intervals.
const minBootstrapDF = 10

type regressor struct {
	factor, level string
	col           int // column in the design matrix; -1 when not identifiable
}

// randomDesign is a random sweep's regression: one row per finished
// trial, one column per kept coefficient.
type randomDesign struct {
	rows    []*Group // the trial's variant
	seedIdx []int    // the trial's index in its variant's seeds
	regs    []regressor
	xAll    [][]float64 // every column: intercept, random sample, regressors
	cols    []int       // the columns kept (linearly independent)
}

func (a *Analysis) randomEffects(opts Options) error {
	d := &randomDesign{}
	levels := map[string][]string{}
	count := map[[2]string]int{}
	for _, g := range a.Groups {
		for i := range g.Seeds {
			d.rows = append(d.rows, g)
			d.seedIdx = append(d.seedIdx, i)
		}
		for f, l := range g.Levels {
			if !slices.Contains(levels[f], l) {
				levels[f] = append(levels[f], l)
			}
			count[[2]string{f, l}] += g.N()
		}
	}
	d.regs = a.references(levels, count)
	d.columns()
	coef, ci, err := a.fitRandom(d)
	if err != nil {
		return err
	}
	for _, rg := range d.regs {
		a.Effects = append(a.Effects, a.randomEffect(rg, coef, ci))
	}
	a.Notes = append(a.Notes, "random design: effects are coefficients of an additive least-squares model (no interactions) fitted over every finished trial; intervals from a case bootstrap")
	return nil
}

// references picks each factor's reference level (noted) and returns a
// regressor for every other level.
func (a *Analysis) references(levels map[string][]string, count map[[2]string]int) []regressor {
	factors := slices.Sorted(maps.Keys(levels))
	slices.SortStableFunc(factors, compareFactors)
	a.References = map[string]string{}
	var regs []regressor
	for _, f := range factors {
		ls := levels[f]
		slices.Sort(ls)
		ref, isBase, err := a.baselineLevel(f, ls)
		if !isBase {
			// The most frequent level, ties to the first in order.
			ref = slices.MaxFunc(ls, func(x, y string) int {
				return cmp.Compare(count[[2]string{f, x}], count[[2]string{f, y}])
			})
		}
		a.References[f] = ref
		note := fmt.Sprintf("random design: %s effects are relative to %s=%s", f, f, ref)
		switch {
		case isBase:
			note += " (the baseline's setting)"
		case err != nil:
			note += fmt.Sprintf(" (the most sampled level; whether a level is the baseline's setting is unknown: %v)", err)
		default:
			note += " (the most sampled level; no level matches the baseline's setting)"
		}
		a.Notes = append(a.Notes, note)
		for _, l := range ls {
			if l != ref {
				regs = append(regs, regressor{factor: f, level: l})
			}
		}
	}
	return regs
}

// columns builds the full design (intercept, random-sample indicator, one
// column per regressor), keeps its independent columns and numbers each
// regressor's.
func (d *randomDesign) columns() {
	d.xAll = make([][]float64, len(d.rows))
	for i, g := range d.rows {
		row := make([]float64, 2+len(d.regs))
		row[0] = 1
		if g.Factor == RandomFactor {
			row[1] = 1
		}
		for j, rg := range d.regs {
			if g.Levels[rg.factor] == rg.level {
				row[2+j] = 1
			}
		}
		d.xAll[i] = row
	}
	d.cols = nil
	for c, k := range independentColumns(d.xAll) {
		if k {
			d.cols = append(d.cols, c)
		}
	}
	for j := range d.regs {
		d.regs[j].col = slices.Index(d.cols, 2+j)
	}
}

// design is the kept columns of every row.
func (d *randomDesign) design() [][]float64 {
	x := make([][]float64, len(d.rows))
	for r := range d.rows {
		x[r] = make([]float64, len(d.cols))
		for k, c := range d.cols {
			x[r][k] = d.xAll[r][c]
		}
	}
	return x
}

// y is every row's value of metric m.
func (d *randomDesign) y(m string) []float64 {
	out := make([]float64, len(d.rows))
	for r, g := range d.rows {
		out[r] = g.Values[m][d.seedIdx[r]]
	}
	return out
}

// fitRandom fits the model per metric and, with trials to spare, its
// case-bootstrap intervals.
func (a *Analysis) fitRandom(d *randomDesign) (coef map[string][]float64, ci map[string][]*Interval, err error) {
	// A case bootstrap of a regression is only trustworthy with trials to
	// spare; below that it gives intervals too narrow to lean on.
	canCI := len(d.rows)-len(d.cols) >= minBootstrapDF
	if !canCI {
		a.Notes = append(a.Notes, fmt.Sprintf("random design: %d finished trials for %d coefficients; a bootstrap needs at least %d trials to spare, so no intervals", len(d.rows), len(d.cols), minBootstrapDF))
	}
	coef, ci = map[string][]float64{}, map[string][]*Interval{}
	x := d.design()
	sparse := newZeroOneRows(x)
	for _, m := range a.Metrics {
		b, ok := leastSquares(x, d.y(m))
		if !ok {
			return nil, nil, fmt.Errorf("random design: the regression of %s is singular; too few distinct samples", m)
		}
		coef[m] = b
		ci[m] = make([]*Interval, len(d.cols))
		if canCI {
			a.bootstrapRandom(d, sparse, m, ci[m])
		}
	}
	return coef, ci, nil
}

// bootstrapRandom fills ci with metric m's case-bootstrap intervals, or
// notes why there are none.
func (a *Analysis) bootstrapRandom(d *randomDesign, sparse *zeroOneRows, m string, ci []*Interval) {
	rng := rand.New(rand.NewPCG(streamSeed(a.Seed, RandomFactor, m), 0x5851f42d4c957f2d))
	draws := make([][]float64, len(d.cols))
	ym := d.y(m)
	idx := make([]int, len(d.rows))
	for range a.Resamples {
		for i := range idx {
			idx[i] = rng.IntN(len(d.rows))
		}
		xtx, xty := sparse.normal(idx, ym)
		bb, ok := solveNormal(xtx, xty)
		if !ok {
			continue // a level absent from this resample
		}
		for k := range d.cols {
			draws[k] = append(draws[k], bb[k])
		}
	}
	if len(draws[0]) < a.Resamples/2 {
		a.Notes = append(a.Notes, fmt.Sprintf("random design: only %d of %d bootstrap refits of %s were solvable; no intervals", len(draws[0]), a.Resamples, m))
		return
	}
	alpha := (1 - a.Confidence) / 2
	for k := range d.cols {
		slices.Sort(draws[k])
		ci[k] = &Interval{Low: study.Quantile(draws[k], alpha), High: study.Quantile(draws[k], 1-alpha)}
	}
}

// members counts the trials at factor=level and collects their values.
func (a *Analysis) members(f, l string) (n int, vals map[string][]float64) {
	vals = map[string][]float64{}
	for _, g := range a.Groups {
		if g.Levels[f] == l {
			n += g.N()
			for _, m := range a.Metrics {
				vals[m] = append(vals[m], g.Values[m]...)
			}
		}
	}
	return n, vals
}

// randomEffect is one regressor's effect and verdict.
func (a *Analysis) randomEffect(rg regressor, coef map[string][]float64, ci map[string][]*Interval) Effect {
	ref := a.References[rg.factor]
	e := Effect{Factor: rg.factor, Level: rg.level, Method: "regression vs " + rg.factor + "=" + ref}
	n, vals := a.members(rg.factor, rg.level)
	nRef, refVals := a.members(rg.factor, ref)
	for _, m := range a.Metrics {
		est := Estimate{Metric: m, Mean: study.Mean(vals[m]), BaselineMean: study.Mean(refVals[m]), N: n, NBaseline: nRef}
		est.Effect = est.Mean - est.BaselineMean
		if rg.col >= 0 {
			est.Effect = coef[m][rg.col]
			if n >= 2 && nRef >= 2 {
				est.CI = ci[m][rg.col]
			}
		}
		e.Estimates = append(e.Estimates, est)
	}
	e = a.judgeByInterval(e)
	if rg.col < 0 {
		e.Verdict = Inconclusive
		e.Note = "not identifiable: this level always occurs together with others in the samples; the effect shown is the raw difference of means"
	}
	return e
}

// baselineLevel finds the level of factor that is the baseline's own
// setting: copying that level's part of a sample's spec into the
// baseline (sweep.Transplant) changes nothing. err is set when the factor
// is not one package sweep defines, so nothing could be compared.
func (a *Analysis) baselineLevel(factor string, levels []string) (string, bool, error) {
	base := a.baselineSpec()
	if base == nil {
		return "", false, nil
	}
	if _, err := sweep.Parts(factor); err != nil {
		return "", false, err
	}
	for _, l := range levels {
		donor, err := a.donorSpec(factor, l)
		if err != nil {
			continue
		}
		cand, groups := base.Clone(), sweep.GroupsOf(*base)
		if sweep.Transplant(factor, &cand, groups, donor) != nil {
			continue
		}
		if reflect.DeepEqual(cand, *base) && slices.Equal(groups, sweep.GroupsOf(*base)) {
			return l, true, nil
		}
	}
	return "", false, nil
}

// compareFactors orders factor names as reportOrder does, unknown ones last
// and alphabetically.
func compareFactors(x, y string) int {
	index := func(f string) int {
		if i := slices.Index(reportOrder, f); i >= 0 {
			return i
		}
		return len(reportOrder)
	}
	if c := cmp.Compare(index(x), index(y)); c != 0 {
		return c
	}
	return cmp.Compare(x, y)
}

// independentColumns keeps, left to right, the columns of x that are not
// linear combinations of the kept ones (Gram-Schmidt with a relative
// tolerance).
func independentColumns(x [][]float64) []bool {
	if len(x) == 0 {
		return nil
	}
	p := len(x[0])
	keep := make([]bool, p)
	var basis [][]float64
	for j := range p {
		v := make([]float64, len(x))
		for i := range x {
			v[i] = x[i][j]
		}
		norm0 := math.Sqrt(dot(v, v))
		for _, q := range basis {
			d := dot(v, q)
			for i := range v {
				v[i] -= d * q[i]
			}
		}
		norm := math.Sqrt(dot(v, v))
		if norm0 == 0 || norm < 1e-9*norm0 {
			continue
		}
		for i := range v {
			v[i] /= norm
		}
		basis = append(basis, v)
		keep[j] = true
	}
	return keep
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// leastSquares solves min ‖Xb − y‖ by the normal equations and a Cholesky
// factorisation; ok is false when XᵀX is (numerically) singular.
func leastSquares(x [][]float64, y []float64) ([]float64, bool) {
	if len(x) == 0 {
		return nil, false
	}
	p := len(x[0])
	a := make([][]float64, p)
	b := make([]float64, p)
	for j := range p {
		a[j] = make([]float64, p)
	}
	for i, row := range x {
		for j := range p {
			b[j] += row[j] * y[i]
			for k := range p {
				a[j][k] += row[j] * row[k]
			}
		}
	}
	return solveNormal(a, b)
}

// solveNormal solves the normal equations a·β = b (a = XᵀX, b = Xᵀy) by a
// Cholesky factorisation; ok is false when a is (numerically) singular.
func solveNormal(a [][]float64, b []float64) ([]float64, bool) {
	p := len(b)
	// Cholesky: a = L Lᵀ.
	l := make([][]float64, p)
	for j := range p {
		l[j] = make([]float64, p)
	}
	for j := range p {
		s := a[j][j]
		for k := range j {
			s -= l[j][k] * l[j][k]
		}
		if s <= 1e-10*max(1, a[j][j]) {
			return nil, false
		}
		l[j][j] = math.Sqrt(s)
		for i := j + 1; i < p; i++ {
			t := a[i][j]
			for k := range j {
				t -= l[i][k] * l[j][k]
			}
			l[i][j] = t / l[j][j]
		}
	}
	z := make([]float64, p)
	for i := range p {
		t := b[i]
		for k := range i {
			t -= l[i][k] * z[k]
		}
		z[i] = t / l[i][i]
	}
	out := make([]float64, p)
	for i := p - 1; i >= 0; i-- {
		t := z[i]
		for k := i + 1; k < p; k++ {
			t -= l[k][i] * out[k]
		}
		out[i] = t / l[i][i]
	}
	return out, true
}

// zeroOneRows is a design matrix of 0s and 1s (a random design's) kept as
// each row's non-zero columns, for the bootstrap's normal equations:
// building each resample's dense design made it O(resamples·trials·
// columns²) in time and allocations.
type zeroOneRows struct {
	cols int
	nz   [][]int // row i's non-zero columns
	// pattern numbers each row's distinct list of columns, patterns
	// holds them: at most the product of the factors' level counts,
	// whatever the number of trials.
	pattern  []int
	patterns [][]int
	drawn    []int
	xtx      [][]float64
	xty      []float64
}

func newZeroOneRows(x [][]float64) *zeroOneRows {
	z := &zeroOneRows{nz: make([][]int, len(x)), pattern: make([]int, len(x))}
	if len(x) > 0 {
		z.cols = len(x[0])
	}
	index := map[string]int{}
	for i, row := range x {
		for k, v := range row {
			if v != 0 {
				z.nz[i] = append(z.nz[i], k)
			}
		}
		key := fmt.Sprint(z.nz[i])
		q, ok := index[key]
		if !ok {
			q = len(z.patterns)
			index[key] = q
			z.patterns = append(z.patterns, z.nz[i])
		}
		z.pattern[i] = q
	}
	z.drawn = make([]int, len(z.patterns))
	z.xty = make([]float64, z.cols)
	z.xtx = make([][]float64, z.cols)
	for j := range z.xtx {
		z.xtx[j] = make([]float64, z.cols)
	}
	return z
}

// normal returns XᵀX and Xᵀy over the rows idx (with repeats; y is
// per row of the design), in
// buffers reused by the next call. Xᵀy adds each drawn y to its row's
// columns in draw order, as the dense product does (the same bits);
// XᵀX is each pattern's count times its outer product (whole numbers:
// exact).
func (z *zeroOneRows) normal(idx []int, y []float64) ([][]float64, []float64) {
	for j := range z.xtx {
		clear(z.xtx[j])
	}
	clear(z.xty)
	clear(z.drawn)
	for _, i := range idx {
		z.drawn[z.pattern[i]]++
		for _, j := range z.nz[i] {
			z.xty[j] += y[i]
		}
	}
	for q, c := range z.drawn {
		if c == 0 {
			continue
		}
		for _, j := range z.patterns[q] {
			for _, k := range z.patterns[q] {
				z.xtx[j][k] += float64(c)
			}
		}
	}
	return z.xtx, z.xty
}
