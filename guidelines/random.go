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

func (a *Analysis) randomEffects(opts Options) error {
	var rows []*Group // one row per finished trial
	var seedIdx []int
	levels := map[string][]string{}
	count := map[[2]string]int{}
	for _, g := range a.Groups {
		for i := range g.Seeds {
			rows = append(rows, g)
			seedIdx = append(seedIdx, i)
		}
		for f, l := range g.Levels {
			if !slices.Contains(levels[f], l) {
				levels[f] = append(levels[f], l)
			}
			count[[2]string{f, l}] += g.N()
		}
	}
	factors := slices.Sorted(maps.Keys(levels))
	slices.SortStableFunc(factors, compareFactors)
	a.References = map[string]string{}
	var regs []regressor
	for _, f := range factors {
		ls := levels[f]
		slices.Sort(ls)
		ref, isBase := a.baselineLevel(f, ls)
		if !isBase {
			// The most frequent level, ties to the first in order.
			ref = slices.MaxFunc(ls, func(x, y string) int {
				return cmp.Compare(count[[2]string{f, x}], count[[2]string{f, y}])
			})
		}
		a.References[f] = ref
		note := fmt.Sprintf("random design: %s effects are relative to %s=%s", f, f, ref)
		if isBase {
			note += " (the baseline's setting)"
		} else {
			note += " (the most sampled level; no level matches the baseline's setting)"
		}
		a.Notes = append(a.Notes, note)
		for _, l := range ls {
			if l != ref {
				regs = append(regs, regressor{factor: f, level: l})
			}
		}
	}
	// Columns: intercept, random-sample indicator, one per regressor.
	full := func(g *Group) []float64 {
		row := make([]float64, 2+len(regs))
		row[0] = 1
		if g.Factor == RandomFactor {
			row[1] = 1
		}
		for j, rg := range regs {
			if g.Levels[rg.factor] == rg.level {
				row[2+j] = 1
			}
		}
		return row
	}
	all := make([]int, len(rows))
	for i := range all {
		all[i] = i
	}
	xAll := make([][]float64, len(rows))
	for i, g := range rows {
		xAll[i] = full(g)
	}
	keep := independentColumns(xAll)
	var cols []int
	for c, k := range keep {
		if k {
			cols = append(cols, c)
		}
	}
	for j := range regs {
		regs[j].col = slices.Index(cols, 2+j)
	}
	design := func(idx []int) [][]float64 {
		x := make([][]float64, len(idx))
		for r, i := range idx {
			x[r] = make([]float64, len(cols))
			for k, c := range cols {
				x[r][k] = xAll[i][c]
			}
		}
		return x
	}
	y := func(idx []int, m string) []float64 {
		out := make([]float64, len(idx))
		for r, i := range idx {
			out[r] = rows[i].Values[m][seedIdx[i]]
		}
		return out
	}
	// A case bootstrap of a regression is only trustworthy with trials to
	// spare; below that it gives intervals too narrow to lean on.
	canCI := len(rows)-len(cols) >= minBootstrapDF
	if !canCI {
		a.Notes = append(a.Notes, fmt.Sprintf("random design: %d finished trials for %d coefficients; a bootstrap needs at least %d trials to spare, so no intervals", len(rows), len(cols), minBootstrapDF))
	}
	coef := map[string][]float64{}
	ci := map[string][]*Interval{}
	sparse := newZeroOneRows(design(all))
	for _, m := range a.Metrics {
		b, ok := leastSquares(design(all), y(all, m))
		if !ok {
			return fmt.Errorf("random design: the regression of %s is singular; too few distinct samples", m)
		}
		coef[m] = b
		ci[m] = make([]*Interval, len(cols))
		if !canCI {
			continue
		}
		rng := rand.New(rand.NewPCG(streamSeed(a.Seed, RandomFactor, m), 0x5851f42d4c957f2d))
		draws := make([][]float64, len(cols))
		ym := y(all, m)
		idx := make([]int, len(rows))
		for range a.Resamples {
			for i := range idx {
				idx[i] = rng.IntN(len(rows))
			}
			xtx, xty := sparse.normal(idx, ym)
			bb, ok := solveNormal(xtx, xty)
			if !ok {
				continue // a level absent from this resample
			}
			for k := range cols {
				draws[k] = append(draws[k], bb[k])
			}
		}
		if len(draws[0]) < a.Resamples/2 {
			a.Notes = append(a.Notes, fmt.Sprintf("random design: only %d of %d bootstrap refits of %s were solvable; no intervals", len(draws[0]), a.Resamples, m))
			continue
		}
		alpha := (1 - a.Confidence) / 2
		for k := range cols {
			slices.Sort(draws[k])
			ci[m][k] = &Interval{Low: study.Quantile(draws[k], alpha), High: study.Quantile(draws[k], 1-alpha)}
		}
	}
	members := func(f, l string) (n int, vals map[string][]float64) {
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
	for _, rg := range regs {
		ref := a.References[rg.factor]
		e := Effect{Factor: rg.factor, Level: rg.level, Method: "regression vs " + rg.factor + "=" + ref}
		n, vals := members(rg.factor, rg.level)
		nRef, refVals := members(rg.factor, ref)
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
		a.Effects = append(a.Effects, e)
	}
	a.Notes = append(a.Notes, "random design: effects are coefficients of an additive least-squares model (no interactions) fitted over every finished trial; intervals from a case bootstrap")
	return nil
}

// baselineLevel finds the level of factor that is the baseline's own
// setting: copying that level's part of a sample's spec into the
// baseline changes nothing.
func (a *Analysis) baselineLevel(factor string, levels []string) (string, bool) {
	base := a.baselineSpec()
	t, ok := transplants[factor]
	if base == nil || !ok {
		return "", false
	}
	for _, l := range levels {
		donor, err := a.donorSpec(factor, l)
		if err != nil {
			continue
		}
		cand, groups := base.Clone(), groupsOf(*base)
		if t.apply(&cand, donor, groups) != nil {
			continue
		}
		if reflect.DeepEqual(cand, *base) && slices.Equal(groups, groupsOf(*base)) {
			return l, true
		}
	}
	return "", false
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
