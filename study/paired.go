// Package study holds the statistics of a seeded one-factor study: effects
// of variants against a baseline estimated from a paired additive model,
// their t intervals, Holm's correction for the number of levels, power
// and minimum detectable effects, and the seed policy that adds seeds in
// rounds (a group-sequential design). It is pure Go (gonum only) so that
// the sweep planner, the runner and the guidelines report share one
// implementation.
package study

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Obs is one finished trial's value of a metric.
type Obs struct {
	Variant string
	Seed    int64
	Value   float64
}

// Fit is the additive model value ~ variant + seed, fitted by least
// squares. Seeds are blocks: a seed fixes the data order, the random
// starts and the evaluation subset of every variant, so differences are
// paired by seed and seed-to-seed variation that all variants share
// cancels. The residual variance is pooled over every variant of the
// sweep, which is what makes intervals possible with two or three seeds.
type Fit struct {
	Baseline string
	Variants []string // baseline first, then by name
	Seeds    []int64  // seeds that enter the model (shared by ≥ 2 variants), ascending
	N        int      // observations in the model
	DF       int      // residual degrees of freedom, N − parameters
	Sigma    float64  // pooled residual standard deviation (NaN when DF is 0)
	// Dropped counts observations left out because no other variant has
	// their seed: their seed effect would absorb them entirely.
	Dropped int
	// Separate are the levels whose Contrast is their own paired analysis:
	// their seeds spread more than the pooled SD allows and that analysis
	// is the more cautious one.
	Separate []string

	means  map[string]float64 // variant coefficients: seed-adjusted means, all relative to the first seed
	values map[string]map[int64]float64
	index  map[string]int
	count  map[string]int
	pairs  map[string]int
	// obsSeed and obsVal are each variant's observations (by index into
	// Variants) as seed indices into Seeds and values, in seed order;
	// seedCount counts the variants of each seed.
	obsSeed   [][]int
	obsVal    [][]float64
	seedCount []int
	// mean and within are each variant's mean and sum of squares about
	// it; reduced and rhs the seeds' system once the variants are
	// eliminated, chol its factorisation; cut the variants without which
	// the rest is not linked (fitPooled).
	mean, within []float64
	reduced      *mat.SymDense
	rhs          []float64
	chol         mat.Cholesky
	cut          []bool
}

// ErrNotEstimable: the observations cannot identify the effects (no
// baseline, or a variant shares no seed with the rest).
var ErrNotEstimable = errors.New("effects not estimable")

// SpreadAlpha is the level of the spread check (Fit.Spread) below which
// a level's own paired analysis is considered; not corrected for the
// number of levels, so that a noisy level is caught rather than missed.
const SpreadAlpha = 0.05

// FitPaired fits value ~ variant + seed to obs. The baseline must be among
// the variants.
//
// A level whose seeds spread more than the other variants' pooled SD
// allows (Spread's P < SpreadAlpha) may get too narrow an interval from
// the pooled model. Such a level is also analysed on its own paired
// differences from the baseline (a paired t with pairs−1 degrees of
// freedom, which assumes nothing about the other variants' noise), and
// the more cautious of the two analyses — the larger p-value — is the one
// its Contrast reports; Separate lists the levels where that is the
// paired one. Rejecting only when both reject cannot raise the error
// rate, whichever model is right, and the other levels are untouched.
func FitPaired(obs []Obs, baseline string) (*Fit, error) {
	f, err := fitPooled(obs, baseline)
	if err != nil {
		return nil, err
	}
	for _, v := range f.Variants[1:] {
		sp, ok := f.Spread(v)
		if !ok || sp.P >= SpreadAlpha {
			continue
		}
		pooled, err := f.Contrast(v)
		if err != nil {
			continue
		}
		if own := f.ownContrast(v); own.OK() && !(own.P() <= pooled.P()) {
			f.Separate = append(f.Separate, v)
		}
	}
	return f, nil
}

// ownContrast is the paired t analysis of variant's differences alone.
func (f *Fit) ownContrast(variant string) Contrast {
	d := f.pairedDiffs(variant)
	c := Contrast{Variant: variant, Effect: stat.Mean(d, nil), DF: float64(len(d) - 1),
		N: f.count[variant], NBaseline: f.count[f.Baseline], Paired: len(d), SE: math.NaN()}
	if len(d) > 1 {
		c.SE = stat.StdDev(d, nil) / math.Sqrt(float64(len(d)))
	}
	c.unitSE = c.SE / f.Sigma
	return c
}

// pairedDiffs are variant − baseline on the seeds both have, in seed order.
func (f *Fit) pairedDiffs(variant string) []float64 {
	base, own := f.values[f.Baseline], f.values[variant]
	seeds := make([]int64, 0, len(own))
	for seed := range own {
		if _, ok := base[seed]; ok {
			seeds = append(seeds, seed)
		}
	}
	slices.Sort(seeds)
	d := make([]float64, len(seeds))
	for i, seed := range seeds {
		d[i] = own[seed] - base[seed]
	}
	return d
}

// fitPooled is the additive model with one residual variance for all.
//
// The normal equations of value ~ variant + seed have a diagonal variant
// block, so the variants are eliminated and only the seeds' system (its
// Schur complement, one row per seed but the first) is factorised:
// O(N + V·S² + S³) for N observations of V variants and S seeds, where
// the dense design matrix cost O(N·(V+S)²) — seconds per fit at 500
// variants × 20 seeds, and the spread check refitted once per level.
func fitPooled(obs []Obs, baseline string) (*Fit, error) {
	perSeed, err := variantsPerSeed(obs)
	if err != nil {
		return nil, err
	}
	f := &Fit{Baseline: baseline, index: map[string]int{}, count: map[string]int{}, pairs: map[string]int{},
		values: map[string]map[int64]float64{}}
	kept := f.keep(obs, perSeed)
	if f.count[baseline] == 0 {
		return nil, fmt.Errorf("%w: the baseline %s has no seed shared with a variant", ErrNotEstimable, baseline)
	}
	if err := f.layout(kept); err != nil {
		return nil, err
	}
	if err := f.solvePooled(); err != nil {
		return nil, err
	}
	return f, nil
}

// variantsPerSeed lists the variants of every seed; it refuses values
// that are not finite and a variant with a seed twice.
func variantsPerSeed(obs []Obs) (map[int64]map[string]bool, error) {
	perSeed := map[int64]map[string]bool{}
	for _, o := range obs {
		if math.IsNaN(o.Value) || math.IsInf(o.Value, 0) {
			return nil, fmt.Errorf("variant %s seed %d: value %g is not finite", o.Variant, o.Seed, o.Value)
		}
		if perSeed[o.Seed] == nil {
			perSeed[o.Seed] = map[string]bool{}
		}
		if perSeed[o.Seed][o.Variant] {
			return nil, fmt.Errorf("variant %s seed %d appears twice", o.Variant, o.Seed)
		}
		perSeed[o.Seed][o.Variant] = true
	}
	return perSeed, nil
}

// keep returns the observations whose seed another variant shares, in a
// canonical order, counting the others in Dropped, and notes each
// variant's values, counts and pairs with the baseline.
func (f *Fit) keep(obs []Obs, perSeed map[int64]map[string]bool) []Obs {
	// A canonical order, so that the same trials give the same bits
	// whatever order the store lists them in.
	obs = slices.Clone(obs)
	slices.SortFunc(obs, func(a, b Obs) int {
		return cmp.Or(cmp.Compare(a.Variant, b.Variant), cmp.Compare(a.Seed, b.Seed))
	})
	var kept []Obs
	for _, o := range obs {
		if len(perSeed[o.Seed]) < 2 {
			f.Dropped++
			continue
		}
		kept = append(kept, o)
		if f.values[o.Variant] == nil {
			f.values[o.Variant] = map[int64]float64{}
		}
		f.values[o.Variant][o.Seed] = o.Value
		if _, ok := f.index[o.Variant]; !ok && o.Variant != f.Baseline {
			f.index[o.Variant] = -1
			f.Variants = append(f.Variants, o.Variant)
		}
		f.count[o.Variant]++
		if o.Variant != f.Baseline && perSeed[o.Seed][f.Baseline] {
			f.pairs[o.Variant]++
		}
	}
	return kept
}

// layout numbers the variants (baseline first) and seeds (ascending),
// checks there are enough observations and that the design is linked,
// and lists each variant's observations in seed order.
func (f *Fit) layout(kept []Obs) error {
	f.Variants = append([]string{f.Baseline}, f.Variants...)
	for i, v := range f.Variants {
		f.index[v] = i
	}
	seedIdx := map[int64]int{}
	for _, o := range kept {
		if _, ok := seedIdx[o.Seed]; !ok {
			seedIdx[o.Seed] = 0
			f.Seeds = append(f.Seeds, o.Seed)
		}
	}
	slices.SortFunc(f.Seeds, cmp.Compare)
	for i, s := range f.Seeds {
		seedIdx[s] = i
	}
	p := len(f.Variants) + len(f.Seeds) - 1
	f.N = len(kept)
	if f.N < p {
		return fmt.Errorf("%w: %d observations for %d parameters", ErrNotEstimable, f.N, p)
	}
	// Each variant's observations in seed order (kept is sorted so).
	v := len(f.Variants)
	f.obsSeed, f.obsVal = make([][]int, v), make([][]float64, v)
	f.seedCount = make([]int, len(f.Seeds))
	for _, o := range kept {
		i, j := f.index[o.Variant], seedIdx[o.Seed]
		f.obsSeed[i] = append(f.obsSeed[i], j)
		f.obsVal[i] = append(f.obsVal[i], o.Value)
		f.seedCount[j]++
	}
	f.cut = f.cutVariants()
	if f.cut == nil {
		return fmt.Errorf("%w: the design is singular (a variant's seeds are not linked to the baseline's)", ErrNotEstimable)
	}
	return nil
}

// solvePooled solves the seeds' reduced system and sets the variants'
// seed-adjusted means, the residual degrees of freedom and Sigma.
func (f *Fit) solvePooled() error {
	v := len(f.Variants)
	f.mean, f.within = make([]float64, v), make([]float64, v)
	for i, ys := range f.obsVal {
		f.mean[i] = stat.Mean(ys, nil)
		for _, y := range ys {
			f.within[i] += (y - f.mean[i]) * (y - f.mean[i])
		}
	}
	// The seeds' reduced system C·β = g, the first seed's effect fixed at
	// zero: C = Σ_v diag(b_v) − b_v b_vᵀ/n_v and g = Σ_v (y_v − ȳ_v) over
	// the variant's seeds b_v.
	c, g := mat.NewSymDense(max(1, len(f.Seeds)-1), nil), make([]float64, len(f.Seeds)-1)
	for i := range f.Variants {
		f.addVariant(c, g, i, 1)
	}
	beta, ok := f.solve(c, g, &f.chol)
	if !ok {
		return fmt.Errorf("%w: the design is singular (a variant's seeds are not linked to the baseline's)", ErrNotEstimable)
	}
	f.reduced, f.rhs = c, g
	seedEffect := func(j int) float64 {
		if j == 0 {
			return 0
		}
		return beta[j-1]
	}
	f.means = map[string]float64{}
	var rss float64
	for i, name := range f.Variants {
		var b float64
		for _, j := range f.obsSeed[i] {
			b += seedEffect(j)
		}
		alpha := f.mean[i] - b/float64(len(f.obsSeed[i]))
		f.means[name] = alpha
		for k, j := range f.obsSeed[i] {
			r := f.obsVal[i][k] - alpha - seedEffect(j)
			rss += r * r
		}
	}
	f.DF = f.N - (len(f.Variants) + len(f.Seeds) - 1)
	f.Sigma = math.NaN()
	if f.DF > 0 {
		f.Sigma = math.Sqrt(rss / float64(f.DF))
	}
	return nil
}

// addVariant adds sign × variant i's share to the seeds' reduced system.
func (f *Fit) addVariant(c *mat.SymDense, g []float64, i int, sign float64) {
	seeds, ys := f.obsSeed[i], f.obsVal[i]
	inv := 1 / float64(len(seeds))
	for a, j := range seeds {
		if j == 0 {
			continue
		}
		g[j-1] += sign * (ys[a] - f.mean[i])
		for _, k := range seeds[a:] {
			if k == 0 {
				continue
			}
			x := c.At(j-1, k-1) - sign*inv
			if k == j {
				x += sign
			}
			c.SetSym(j-1, k-1, x)
		}
	}
}

// solve factorises c into chol and returns c⁻¹g; with a single seed
// there is nothing to solve. ok is false when c is singular.
func (f *Fit) solve(c *mat.SymDense, g []float64, chol *mat.Cholesky) ([]float64, bool) {
	if len(g) == 0 {
		return nil, true
	}
	if !chol.Factorize(c) {
		return nil, false
	}
	var x mat.VecDense
	if err := chol.SolveVecTo(&x, mat.NewVecDense(len(g), slices.Clone(g))); err != nil {
		return nil, false
	}
	return x.RawVector().Data, true
}

// cutVariants marks the variants whose removal disconnects the graph of
// variants and the seeds they share (Tarjan's articulation points, one
// depth-first search): without such a variant the rest is not estimable.
// It returns nil when the graph is not connected to begin with.
func (f *Fit) cutVariants() []bool {
	v, s := len(f.Variants), len(f.Seeds)
	seedVars := make([][]int, s)
	for i, seeds := range f.obsSeed {
		for _, j := range seeds {
			seedVars[j] = append(seedVars[j], i)
		}
	}
	// Nodes 0..v−1 are variants, v..v+s−1 seeds.
	next := func(u int) []int {
		if u < v {
			out := make([]int, len(f.obsSeed[u]))
			for k, j := range f.obsSeed[u] {
				out[k] = v + j
			}
			return out
		}
		return seedVars[u-v]
	}
	disc, low := make([]int, v+s), make([]int, v+s)
	cut := make([]bool, v)
	t := 0
	var visit func(u, parent int)
	visit = func(u, parent int) {
		t++
		disc[u], low[u] = t, t
		children := 0
		for _, w := range next(u) {
			switch {
			case w == parent:
			case disc[w] > 0:
				low[u] = min(low[u], disc[w])
			default:
				children++
				visit(w, u)
				low[u] = min(low[u], low[w])
				if parent >= 0 && low[w] >= disc[u] && u < v {
					cut[u] = true
				}
			}
		}
		if parent < 0 && children > 1 && u < v {
			cut[u] = true
		}
	}
	visit(0, -1)
	if t != v+s {
		return nil
	}
	return cut
}

// Spread is a variant's own seed-to-seed variation next to the pooled
// one. The model gives every variant the same noise; a level whose paired
// differences spread much more than that gets an interval too narrow for
// it, and the report says so.
type Spread struct {
	Pairs int `json:"pairs"` // seeds the variant shares with the baseline
	// SD is the SD of the paired differences over √2: on the pooled SD's
	// scale, since a difference of two observations has variance 2σ².
	SD    float64 `json:"sd"`
	Ratio float64 `json:"ratio"` // SD² / the other variants' pooled σ²
	// P is the chance of a ratio at least this large if the variant's
	// noise were the others': the upper tail of F(Pairs−1, their DF),
	// whose calibration despite the shared baseline is simulated in the
	// tests.
	P float64 `json:"p"`
}

// Spread compares variant's paired differences with the pooled SD; ok is
// false without two shared seeds or residual degrees of freedom.
func (f *Fit) Spread(variant string) (s Spread, ok bool) {
	if variant == f.Baseline || f.values[variant] == nil {
		return Spread{}, false
	}
	d := f.pairedDiffs(variant)
	if len(d) < 2 {
		return Spread{}, false
	}
	// The reference is the pooled SD of the other variants: the level's own
	// residuals would pull the pooled SD towards its own and hide it.
	sigma, df, ok := f.without(f.index[variant])
	if !ok || df == 0 || !(sigma > 0) {
		return Spread{}, false
	}
	s.Pairs = len(d)
	s.SD = stat.StdDev(d, nil) / math.Sqrt2
	s.Ratio = s.SD * s.SD / (sigma * sigma)
	s.P = distuv.F{D1: float64(s.Pairs - 1), D2: float64(df)}.Survival(s.Ratio)
	return s, true
}

// without is the pooled SD and its degrees of freedom of the model fitted
// to every variant but i. Taking i's share out of the seeds' reduced
// system costs O(S³); only when that would leave a seed with a single
// variant (which the model drops, changing the others' shares) is the
// model refitted from the observations.
func (f *Fit) without(i int) (sigma float64, df int, ok bool) {
	for _, j := range f.obsSeed[i] {
		if f.seedCount[j] <= 2 {
			var rest []Obs
			for k, name := range f.Variants {
				if k == i {
					continue
				}
				for a, j := range f.obsSeed[k] {
					rest = append(rest, Obs{Variant: name, Seed: f.Seeds[j], Value: f.obsVal[k][a]})
				}
			}
			ref, err := fitPooled(rest, f.Baseline)
			if err != nil {
				return 0, 0, false
			}
			return ref.Sigma, ref.DF, true
		}
	}
	if f.cut[i] {
		return 0, 0, false
	}
	df = f.DF - len(f.obsSeed[i]) + 1
	if df <= 0 {
		return math.NaN(), 0, true
	}
	// RSS = Σ_v within_v − gᵀC⁻¹g, the seeds' effects minimising it.
	var within float64
	for k, w := range f.within {
		if k != i {
			within += w
		}
	}
	rss := within
	if len(f.rhs) > 0 {
		c := mat.NewSymDense(len(f.rhs), nil)
		c.CopySym(f.reduced)
		g := slices.Clone(f.rhs)
		f.addVariant(c, g, i, -1)
		var chol mat.Cholesky
		beta, ok := f.solve(c, g, &chol)
		if !ok {
			return 0, 0, false
		}
		for j := range g {
			rss -= g[j] * beta[j]
		}
	}
	return math.Sqrt(max(0, rss) / float64(df)), df, true
}

// Contrast is a variant's effect against the baseline.
type Contrast struct {
	Variant string  `json:"variant"`
	Effect  float64 `json:"effect"`
	// SE is the standard error of Effect; NaN when the model has no
	// residual degrees of freedom.
	SE float64 `json:"se"`
	// DF are the degrees of freedom of SE (fractional after an extra
	// variance component is added, Welch–Satterthwaite).
	DF        float64 `json:"df"`
	N         int     `json:"n"`          // the variant's observations in the model
	NBaseline int     `json:"n_baseline"` // the baseline's
	Paired    int     `json:"paired"`     // seeds the variant shares with the baseline
	// unitSE is SE/σ: what the design alone contributes, used for power.
	unitSE float64
}

// Contrast returns variant − baseline.
func (f *Fit) Contrast(variant string) (Contrast, error) {
	if slices.Contains(f.Separate, variant) {
		return f.ownContrast(variant), nil
	}
	i, ok := f.index[variant]
	if !ok || variant == f.Baseline {
		return Contrast{}, fmt.Errorf("variant %q is not a non-baseline variant of the fit", variant)
	}
	// var(α_i − α_0)/σ² = 1/n_i + 1/n_0 + dᵀC⁻¹d, d = b_i/n_i − b_0/n_0
	// over the seeds but the first (the block inverse of XᵀX).
	v := 1/float64(len(f.obsSeed[i])) + 1/float64(len(f.obsSeed[0]))
	if len(f.rhs) > 0 {
		d := make([]float64, len(f.rhs))
		for k, seeds := range [][]int{f.obsSeed[i], f.obsSeed[0]} {
			w := 1 / float64(len(seeds))
			if k == 1 {
				w = -w
			}
			for _, j := range seeds {
				if j > 0 {
					d[j-1] += w
				}
			}
		}
		var x mat.VecDense
		if err := f.chol.SolveVecTo(&x, mat.NewVecDense(len(d), d)); err != nil {
			return Contrast{}, fmt.Errorf("variant %q: %w", variant, err)
		}
		v += mat.Dot(&x, mat.NewVecDense(len(d), d))
	}
	c := Contrast{Variant: variant, Effect: f.means[variant] - f.means[f.Baseline], DF: float64(f.DF),
		N: f.count[variant], NBaseline: f.count[f.Baseline], Paired: f.pairs[variant], unitSE: math.Sqrt(v)}
	c.SE = f.Sigma * c.unitSE
	return c, nil
}

// WithVariance adds an independent variance component (e.g. the
// evaluation set's sampling error) with its own degrees of freedom,
// combining them by Welch–Satterthwaite.
func (c Contrast) WithVariance(v, df float64) Contrast {
	if v <= 0 || math.IsNaN(c.SE) {
		return c
	}
	v1 := c.SE * c.SE
	c.SE = math.Sqrt(v1 + v)
	c.DF = (v1 + v) * (v1 + v) / (v1*v1/c.DF + v*v/df)
	return c
}

// OK reports whether the contrast has a standard error.
func (c Contrast) OK() bool { return c.DF > 0 && !math.IsNaN(c.SE) }

// T is the t statistic Effect/SE.
func (c Contrast) T() float64 { return c.Effect / c.SE }

// P is the two-sided p-value of Effect = 0.
func (c Contrast) P() float64 {
	if !c.OK() {
		return math.NaN()
	}
	if c.SE == 0 {
		if c.Effect == 0 {
			return 1
		}
		return 0
	}
	return 2 * tDist(c.DF).Survival(math.Abs(c.T()))
}

// Interval is the two-sided interval at the given confidence (0.95).
func (c Contrast) Interval(confidence float64) (lo, hi float64) {
	h := TCrit(confidence, c.DF) * c.SE
	return c.Effect - h, c.Effect + h
}

// MDE is the smallest true effect a two-sided test at level alpha detects
// with the given power: (t₁₋α/₂ + t_power)·SE.
func (c Contrast) MDE(alpha, power float64) float64 {
	if !c.OK() {
		return math.NaN()
	}
	return (TCrit(1-alpha, c.DF) + tDist(c.DF).Quantile(power)) * c.SE
}

// TCrit is Student's t quantile for a two-sided interval at confidence
// level (0.95 → t₀.₉₇₅).
func TCrit(confidence, df float64) float64 {
	return tDist(df).Quantile(1 - (1-confidence)/2)
}

func tDist(df float64) distuv.StudentsT {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
}

// Holm returns Holm's step-down adjusted p-values (family-wise error
// control under any dependence), in the order of ps. NaN p-values are
// left out of the family and stay NaN.
func Holm(ps []float64) []float64 {
	idx, out := holmOrder(ps)
	m := len(idx)
	running := 0.0
	for j, i := range idx {
		running = math.Max(running, math.Min(1, float64(m-j)*ps[i]))
		out[i] = running
	}
	return out
}

// holmOrder returns the indices of the finite p-values, smallest first,
// and a result slice of NaNs the length of ps.
func holmOrder(ps []float64) (idx []int, out []float64) {
	idx = make([]int, 0, len(ps))
	for i, p := range ps {
		if !math.IsNaN(p) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(ps[a], ps[b]) })
	out = make([]float64, len(ps))
	for i := range out {
		out[i] = math.NaN()
	}
	return idx, out
}

// HolmLevels returns, for each p-value, the per-test level at which
// Holm's procedure at family level alpha examines it — α/(m−j) for the
// j-th smallest, frozen at the first level that is not rejected so that
// every accepted hypothesis shares it. An interval at confidence 1 − level
// excludes zero exactly when Holm rejects, which makes the intervals shown
// next to verdicts agree with them.
func HolmLevels(ps []float64, alpha float64) []float64 {
	idx, out := holmOrder(ps)
	m := len(idx)
	frozen := math.NaN()
	for j, i := range idx {
		level := alpha / float64(m-j)
		if !math.IsNaN(frozen) {
			level = frozen
		} else if ps[i] >= level {
			frozen = level
		}
		out[i] = level
	}
	return out
}

// SeedsFor returns the number of seeds per variant (every variant and the
// baseline) a balanced paired design of variants arms (baseline included)
// needs for a two-sided test at level alpha to detect effect with the
// given power, when the seed-to-seed residual SD is sigma and extraVar is
// any variance that seeds do not reduce. It returns 0 when no number up
// to limit suffices.
func SeedsFor(effect, sigma float64, variants int, alpha, power, extraVar float64, limit int) int {
	if variants < 2 || math.IsNaN(sigma) || effect <= 0 {
		return 0
	}
	for n := 2; n <= limit; n++ {
		df := float64((variants - 1) * (n - 1))
		se := math.Sqrt(2*sigma*sigma/float64(n) + extraVar)
		if (TCrit(1-alpha, df)+tDist(df).Quantile(power))*se <= effect {
			return n
		}
	}
	return 0
}
