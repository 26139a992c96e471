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
	cov    *mat.SymDense // (XᵀX)⁻¹ for the variant columns
	index  map[string]int
	count  map[string]int
	pairs  map[string]int
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
func fitPooled(obs []Obs, baseline string) (*Fit, error) {
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
	f := &Fit{Baseline: baseline, index: map[string]int{}, count: map[string]int{}, pairs: map[string]int{},
		values: map[string]map[int64]float64{}}
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
		if _, ok := f.index[o.Variant]; !ok && o.Variant != baseline {
			f.index[o.Variant] = -1
			f.Variants = append(f.Variants, o.Variant)
		}
		if !slices.Contains(f.Seeds, o.Seed) {
			f.Seeds = append(f.Seeds, o.Seed)
		}
		f.count[o.Variant]++
		if o.Variant != baseline && perSeed[o.Seed][baseline] {
			f.pairs[o.Variant]++
		}
	}
	if f.count[baseline] == 0 {
		return nil, fmt.Errorf("%w: the baseline %s has no seed shared with a variant", ErrNotEstimable, baseline)
	}
	f.Variants = append([]string{baseline}, f.Variants...)
	for i, v := range f.Variants {
		f.index[v] = i
	}
	slices.SortFunc(f.Seeds, cmp.Compare)
	seedCol := map[int64]int{}
	for i, s := range f.Seeds[1:] {
		seedCol[s] = len(f.Variants) + i
	}
	p := len(f.Variants) + len(f.Seeds) - 1
	f.N = len(kept)
	if f.N < p {
		return nil, fmt.Errorf("%w: %d observations for %d parameters", ErrNotEstimable, f.N, p)
	}
	x := mat.NewDense(f.N, p, nil)
	y := mat.NewVecDense(f.N, nil)
	for r, o := range kept {
		x.Set(r, f.index[o.Variant], 1)
		if c, ok := seedCol[o.Seed]; ok {
			x.Set(r, c, 1)
		}
		y.SetVec(r, o.Value)
	}
	var xtx mat.SymDense
	xtx.SymOuterK(1, x.T())
	var chol mat.Cholesky
	if !chol.Factorize(&xtx) {
		return nil, fmt.Errorf("%w: the design is singular (a variant's seeds are not linked to the baseline's)", ErrNotEstimable)
	}
	var inv mat.SymDense
	if err := chol.InverseTo(&inv); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotEstimable, err)
	}
	var xty, beta mat.VecDense
	xty.MulVec(x.T(), y)
	beta.MulVec(&inv, &xty)
	var fitted mat.VecDense
	fitted.MulVec(x, &beta)
	var rss float64
	for r := range f.N {
		d := y.AtVec(r) - fitted.AtVec(r)
		rss += d * d
	}
	f.DF = f.N - p
	f.Sigma = math.NaN()
	if f.DF > 0 {
		f.Sigma = math.Sqrt(rss / float64(f.DF))
	}
	f.means = map[string]float64{}
	for i, v := range f.Variants {
		f.means[v] = beta.AtVec(i)
	}
	f.cov = &inv
	return f, nil
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
	var rest []Obs
	for v, bySeed := range f.values {
		if v == variant {
			continue
		}
		for seed, x := range bySeed {
			rest = append(rest, Obs{Variant: v, Seed: seed, Value: x})
		}
	}
	ref, err := fitPooled(rest, f.Baseline)
	if err != nil || ref.DF == 0 || !(ref.Sigma > 0) {
		return Spread{}, false
	}
	s.Pairs = len(d)
	s.SD = stat.StdDev(d, nil) / math.Sqrt2
	s.Ratio = s.SD * s.SD / (ref.Sigma * ref.Sigma)
	s.P = distuv.F{D1: float64(s.Pairs - 1), D2: float64(ref.DF)}.Survival(s.Ratio)
	return s, true
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
	v := f.cov.At(i, i) + f.cov.At(0, 0) - 2*f.cov.At(i, 0)
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
