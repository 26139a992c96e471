package study

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// denseFit is the additive model fitted the textbook way, the dense
// design matrix and (XᵀX)⁻¹ (fitPooled's implementation until
// 2026-12-07): the reference the structured fit is checked against.
// It returns the variant coefficients relative to the first seed, the
// contrast variances var(α_v − α_baseline)/σ², σ and the residual DF.
func denseFit(obs []Obs, baseline string) (means, unitVar map[string]float64, sigma float64, df int, err error) {
	perSeed := map[int64]map[string]bool{}
	for _, o := range obs {
		if perSeed[o.Seed] == nil {
			perSeed[o.Seed] = map[string]bool{}
		}
		perSeed[o.Seed][o.Variant] = true
	}
	obs = slices.Clone(obs)
	slices.SortFunc(obs, func(a, b Obs) int {
		return cmp.Or(cmp.Compare(a.Variant, b.Variant), cmp.Compare(a.Seed, b.Seed))
	})
	index := map[string]int{baseline: 0}
	variants := []string{baseline}
	var seeds []int64
	var kept []Obs
	for _, o := range obs {
		if len(perSeed[o.Seed]) < 2 {
			continue
		}
		kept = append(kept, o)
		if _, ok := index[o.Variant]; !ok {
			index[o.Variant] = len(variants)
			variants = append(variants, o.Variant)
		}
		if !slices.Contains(seeds, o.Seed) {
			seeds = append(seeds, o.Seed)
		}
	}
	slices.SortFunc(seeds, cmp.Compare)
	seedCol := map[int64]int{}
	for i, s := range seeds[1:] {
		seedCol[s] = len(variants) + i
	}
	p := len(variants) + len(seeds) - 1
	n := len(kept)
	if n < p {
		return nil, nil, 0, 0, fmt.Errorf("%d observations for %d parameters", n, p)
	}
	x := mat.NewDense(n, p, nil)
	y := mat.NewVecDense(n, nil)
	for r, o := range kept {
		x.Set(r, index[o.Variant], 1)
		if c, ok := seedCol[o.Seed]; ok {
			x.Set(r, c, 1)
		}
		y.SetVec(r, o.Value)
	}
	var xtx mat.SymDense
	xtx.SymOuterK(1, x.T())
	var chol mat.Cholesky
	if !chol.Factorize(&xtx) {
		return nil, nil, 0, 0, fmt.Errorf("singular design")
	}
	var inv mat.SymDense
	if err := chol.InverseTo(&inv); err != nil {
		return nil, nil, 0, 0, err
	}
	var xty, beta, fitted mat.VecDense
	xty.MulVec(x.T(), y)
	beta.MulVec(&inv, &xty)
	fitted.MulVec(x, &beta)
	var rss float64
	for r := range n {
		d := y.AtVec(r) - fitted.AtVec(r)
		rss += d * d
	}
	df = n - p
	sigma = math.NaN()
	if df > 0 {
		sigma = math.Sqrt(rss / float64(df))
	}
	means, unitVar = map[string]float64{}, map[string]float64{}
	for i, v := range variants {
		means[v] = beta.AtVec(i)
		unitVar[v] = inv.At(i, i) + inv.At(0, 0) - 2*inv.At(i, 0)
	}
	return means, unitVar, sigma, df, nil
}

// randomDesign draws a study of v variants ("v00" the baseline) and s
// seeds in which each non-baseline trial is missing with probability
// miss, with per-seed shifts and per-trial noise.
func randomDesign(rng *rand.Rand, v, s int, miss float64) []Obs {
	shift := make([]float64, s)
	for j := range shift {
		shift[j] = 0.02 * rng.NormFloat64()
	}
	var obs []Obs
	for i := range v {
		effect := 0.01 * rng.NormFloat64()
		for j := range s {
			if i > 0 && rng.Float64() < miss {
				continue
			}
			obs = append(obs, Obs{Variant: fmt.Sprintf("v%02d", i), Seed: int64(10 + j), Value: 0.5 + effect + shift[j] + 0.01*rng.NormFloat64()})
		}
	}
	return obs
}

// The structured fit (variants eliminated, the seeds' system solved)
// gives the dense least-squares fit's effects, standard errors and
// residual SD, on complete and incomplete designs; and the spread
// check's reference SD without each level equals a refit of the others.
func TestStructuredFitEqualsDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	tests := []struct {
		name string
		v, s int
		miss float64
	}{
		{"complete 4x3", 4, 3, 0},
		{"complete 30x8", 30, 8, 0},
		{"a third missing 12x6", 12, 6, 0.33},
		{"half missing 25x5", 25, 5, 0.5},
		{"more seeds than variants 3x20", 3, 20, 0.2},
		{"one seed", 5, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := randomDesign(rng, tt.v, tt.s, tt.miss)
			f, err := FitPaired(obs, "v00")
			require.NoError(t, err)
			means, unitVar, sigma, df, err := denseFit(obs, "v00")
			require.NoError(t, err)
			assert.Equal(t, df, f.DF)
			if df > 0 {
				assert.InEpsilon(t, sigma, f.Sigma, 1e-9)
			} else {
				assert.True(t, math.IsNaN(f.Sigma))
			}
			for _, v := range f.Variants[1:] {
				c, err := f.Contrast(v)
				require.NoError(t, err)
				if slices.Contains(f.Separate, v) {
					continue // its own paired analysis, not the model's
				}
				assert.InDelta(t, means[v]-means["v00"], c.Effect, 1e-12, v)
				assert.InEpsilon(t, unitVar[v], c.unitSE*c.unitSE, 1e-9, v)
				sp, ok := f.Spread(v)
				var rest []Obs
				for _, o := range obs {
					if o.Variant != v {
						rest = append(rest, o)
					}
				}
				_, _, refSigma, refDF, err := denseFit(rest, "v00")
				if err != nil || refDF == 0 || len(f.pairedDiffs(v)) < 2 {
					assert.False(t, ok, v)
					continue
				}
				require.True(t, ok, v)
				assert.InEpsilon(t, sp.SD*sp.SD/(refSigma*refSigma), sp.Ratio, 1e-8, v)
			}
		})
	}
}

// A design whose variants do not all share seeds with the baseline is
// refused; a level that alone links two groups of seeds gets no spread
// check (without it the others are not estimable), and a level alone
// with the baseline on a seed is checked against a refit.
func TestStructuredFitLinks(t *testing.T) {
	o := func(v string, seed int64, x float64) Obs { return Obs{Variant: v, Seed: seed, Value: x} }
	_, err := FitPaired([]Obs{o("b", 0, .5), o("x", 0, .6), o("b", 1, .5), o("x", 1, .61),
		o("y", 2, .5), o("z", 2, .4), o("y", 3, .52), o("z", 3, .43)}, "b")
	require.ErrorIs(t, err, ErrNotEstimable)

	// Seeds 0–2 hold b, x, y; seeds 3–5 hold z, w and the bridge l,
	// which also has seeds 0–2.
	var obs []Obs
	rng := rand.New(rand.NewPCG(1, 2))
	for s := range int64(3) {
		for _, v := range []string{"b", "x", "y", "l"} {
			obs = append(obs, o(v, s, 0.5+0.01*rng.NormFloat64()))
		}
		for _, v := range []string{"z", "w", "l"} {
			obs = append(obs, o(v, s+3, 0.5+0.01*rng.NormFloat64()))
		}
	}
	f, err := FitPaired(obs, "b")
	require.NoError(t, err)
	assert.Equal(t, []bool{false, true, false, false, false, false}, cutOf(f, "b", "l", "w", "x", "y", "z"))
	_, ok := f.Spread("l")
	assert.False(t, ok, "without l, z and w are not linked to the baseline")
	_, ok = f.Spread("x")
	assert.True(t, ok)

	// s is alone with x on seed 9: without x, s has no shared seed and
	// leaves the model with it, which the reference must account for.
	obs = obs[:0]
	for s := range int64(4) {
		for _, v := range []string{"b", "x", "y"} {
			obs = append(obs, o(v, s, 0.5+0.01*rng.NormFloat64()))
		}
	}
	obs = append(obs, o("x", 9, 0.55), o("s", 9, 0.5))
	f, err = FitPaired(obs, "b")
	require.NoError(t, err)
	sp, ok := f.Spread("x")
	require.True(t, ok)
	var rest []Obs
	for _, ob := range obs {
		if ob.Variant != "x" {
			rest = append(rest, ob)
		}
	}
	_, _, refSigma, refDF, err := denseFit(rest, "b")
	require.NoError(t, err)
	assert.Equal(t, 3, refDF, "b and y on seeds 0–3: (2−1)(4−1)")
	assert.InEpsilon(t, sp.SD*sp.SD/(refSigma*refSigma), sp.Ratio, 1e-9)
}

func cutOf(f *Fit, variants ...string) []bool {
	out := make([]bool, len(variants))
	for k, v := range variants {
		out[k] = f.cut[f.index[v]]
	}
	return out
}
