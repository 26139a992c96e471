package guidelines

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4}
	tests := []struct{ q, want float64 }{{0, 1}, {1, 4}, {0.5, 2.5}, {0.25, 1.75}, {0.9, 3.7}}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, Quantile(xs, tt.q), 1e-12, "q=%g", tt.q)
	}
	assert.True(t, math.IsNaN(Quantile(nil, 0.5)))
}

func TestMeanStdDev(t *testing.T) {
	assert.InDelta(t, 2.5, Mean([]float64{1, 2, 3, 4}), 1e-12)
	assert.InDelta(t, math.Sqrt(5.0/3.0), StdDev([]float64{1, 2, 3, 4}), 1e-12)
	assert.Zero(t, StdDev([]float64{7}))
	assert.True(t, math.IsNaN(Mean(nil)))
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
	se := math.Sqrt(StdDev(a)*StdDev(a)/float64(len(a)) + StdDev(b)*StdDev(b)/float64(len(b)))
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
		assert.InDelta(t, tt.want, e.At(tt.x), 1e-12, "F(%g)", tt.x)
	}
}

func TestLinearFit(t *testing.T) {
	f, ok := LinearFit([]float64{1, 2, 3, 4}, []float64{3, 5, 7, 9})
	require.True(t, ok)
	assert.InDelta(t, 2, f.Slope, 1e-12)
	assert.InDelta(t, 1, f.Intercept, 1e-12)
	assert.InDelta(t, 1, f.R, 1e-12)
	f, ok = LinearFit([]float64{1, 2, 3, 4}, []float64{4, 3, 2, 1})
	require.True(t, ok)
	assert.InDelta(t, -1, f.R, 1e-12)
	_, ok = LinearFit([]float64{2, 2, 2}, []float64{1, 2, 3})
	assert.False(t, ok, "constant x")
	_, ok = LinearFit([]float64{1, 2}, []float64{1, 2})
	assert.False(t, ok, "two points")
}

func TestLeastSquares(t *testing.T) {
	// y = 1 + 2·x1 − 3·x2, exactly.
	x := [][]float64{{1, 0, 0}, {1, 1, 0}, {1, 0, 1}, {1, 1, 1}, {1, 2, 1}}
	y := make([]float64, len(x))
	for i, r := range x {
		y[i] = 1 + 2*r[1] - 3*r[2]
	}
	b, ok := leastSquares(x, y)
	require.True(t, ok)
	assert.InDeltaSlice(t, []float64{1, 2, -3}, b, 1e-9)

	// A duplicated column is singular, and independentColumns drops it.
	dup := [][]float64{{1, 0, 0}, {1, 1, 1}, {1, 0, 0}, {1, 1, 1}}
	_, ok = leastSquares(dup, []float64{1, 2, 3, 4})
	assert.False(t, ok)
	assert.Equal(t, []bool{true, true, false}, independentColumns(dup))
}
