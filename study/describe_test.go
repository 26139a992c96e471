package study

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat"
)

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4}
	tests := []struct{ q, want float64 }{{0, 1}, {1, 4}, {0.5, 2.5}, {0.25, 1.75}, {0.9, 3.7}}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, Quantile(xs, tt.q), 1e-12, "q=%g", tt.q)
	}
	assert.True(t, math.IsNaN(Quantile(nil, 0.5)))
	// gonum's interpolating quantile is type 4, not type 7: the reason
	// Quantile is kept (describe.go).
	assert.InDelta(t, 2, stat.Quantile(0.5, stat.LinInterp, xs, nil), 1e-12)
}

func TestMean(t *testing.T) {
	assert.InDelta(t, 2.5, Mean([]float64{1, 2, 3, 4}), 1e-12)
	assert.True(t, math.IsNaN(Mean(nil)))
	// The same figure as gonum's, up to rounding.
	rng := rand.New(rand.NewPCG(5, 6))
	xs := make([]float64, 37)
	for i := range xs {
		xs[i] = rng.Float64()
	}
	assert.InDelta(t, stat.Mean(xs, nil), Mean(xs), 1e-14)
}

// Mean's bits do not depend on where the slice lies in memory, as
// stat.Mean's may (floats.Sum adds in SIMD lanes aligned to 16 bytes).
func TestMeanIgnoresAlignment(t *testing.T) {
	buf := make([]float64, 8)
	rng := rand.New(rand.NewPCG(7, 8))
	for range 1000 {
		xs := []float64{rng.Float64(), rng.Float64(), rng.Float64(), rng.Float64()}
		copy(buf, xs)
		a := Mean(buf[:4])
		copy(buf[1:], xs)
		require.Equal(t, a, Mean(buf[1:5]))
	}
}

// For large normal samples the percentile bootstrap of a difference of
// means matches the normal-theory interval, mean ± 1.96·SE.
func TestBootstrapDiffMatchesNormalTheory(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := make([]float64, 400), make([]float64, 300)
	for i := range a {
		a[i] = 0.5 + rng.NormFloat64()
	}
	for i := range b {
		b[i] = 2 * rng.NormFloat64()
	}
	d := Mean(a) - Mean(b)
	sa, sb := stat.StdDev(a, nil), stat.StdDev(b, nil)
	se := math.Sqrt(sa*sa/float64(len(a)) + sb*sb/float64(len(b)))
	lo, hi := BootstrapDiff(a, b, 4000, 0.95, 9)
	assert.InDelta(t, d-1.96*se, lo, 0.1*se)
	assert.InDelta(t, d+1.96*se, hi, 0.1*se)

	lo2, hi2 := BootstrapDiff(a, b, 4000, 0.95, 9)
	assert.Equal(t, [2]float64{lo, hi}, [2]float64{lo2, hi2}, "same seed, same interval")
	lo3, _ := BootstrapDiff(a, b, 4000, 0.95, 10)
	assert.NotEqual(t, lo, lo3, "another seed draws other resamples")
	lo90, hi90 := BootstrapDiff(a, b, 4000, 0.90, 9)
	assert.Greater(t, lo90, lo, "a 90% interval is narrower")
	assert.Less(t, hi90, hi)
}

func TestBootstrapDiffConstantGroups(t *testing.T) {
	lo, hi := BootstrapDiff([]float64{0.5, 0.5}, []float64{0.3, 0.3, 0.3}, 200, 0.95, 1)
	assert.InDelta(t, 0.2, lo, 1e-12)
	assert.InDelta(t, 0.2, hi, 1e-12)
}

func TestEDF(t *testing.T) {
	e := NewEDF("x", []float64{0.3, 0.1, 0.2, 0.2})
	assert.Equal(t, []float64{0.1, 0.2, 0.2, 0.3}, e.Values)
	tests := []struct{ x, want float64 }{{0, 0}, {0.1, 0.25}, {0.15, 0.25}, {0.2, 0.75}, {0.3, 1}, {1, 1}}
	for _, tt := range tests {
		assert.Equal(t, tt.want, e.At(tt.x), "F(%g)", tt.x)
	}
	assert.True(t, math.IsNaN(NewEDF("none", nil).At(0)))
}

func TestFitLine(t *testing.T) {
	f, ok := FitLine([]float64{1, 2, 3, 4}, []float64{3, 5, 7, 9})
	require.True(t, ok)
	assert.InDelta(t, 2, f.Slope, 1e-12)
	assert.InDelta(t, 1, f.Intercept, 1e-12)
	assert.InDelta(t, 1, f.R, 1e-12)
	f, ok = FitLine([]float64{1, 2, 3, 4}, []float64{4, 3, 2, 1})
	require.True(t, ok)
	assert.InDelta(t, -1, f.R, 1e-12)
	_, ok = FitLine([]float64{2, 2, 2}, []float64{1, 2, 3})
	assert.False(t, ok, "constant x")
	_, ok = FitLine([]float64{1, 2}, []float64{1, 2})
	assert.False(t, ok, "two points")

	// The same line and r as gonum's, up to rounding.
	x := []float64{0.3, 1.1, 2.5, 2.7, 4.0, 5.2}
	y := []float64{1.0, 1.9, 3.1, 3.0, 4.4, 6.1}
	f, ok = FitLine(x, y)
	require.True(t, ok)
	alpha, beta := stat.LinearRegression(x, y, nil, false)
	assert.InDelta(t, beta, f.Slope, 1e-12)
	assert.InDelta(t, alpha, f.Intercept, 1e-12)
	assert.InDelta(t, stat.Correlation(x, y, nil), f.R, 1e-12)
}
