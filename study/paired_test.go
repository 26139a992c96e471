package study

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHolm(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name     string
		ps       []float64
		adjusted []float64
		levels   []float64 // at alpha 0.05
	}{
		{"four levels", []float64{0.01, 0.04, 0.03, 0.005},
			[]float64{0.03, 0.06, 0.06, 0.02},
			[]float64{0.05 / 3, 0.025, 0.025, 0.0125}},
		{"a level without a p-value stays out of the family", []float64{0.02, nan},
			[]float64{0.02, nan}, []float64{0.05, nan}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, levels := Holm(tt.ps), HolmLevels(tt.ps, 0.05)
			for i := range tt.ps {
				if math.IsNaN(tt.adjusted[i]) {
					assert.True(t, math.IsNaN(got[i]))
					assert.True(t, math.IsNaN(levels[i]))
					continue
				}
				assert.InDelta(t, tt.adjusted[i], got[i], 1e-12)
				assert.InDelta(t, tt.levels[i], levels[i], 1e-12)
				// Rejected by Holm exactly when below its level.
				assert.Equal(t, got[i] < 0.05, tt.ps[i] < levels[i], "p %g", tt.ps[i])
			}
		})
	}
}

func TestFitPairedRemovesSeedShifts(t *testing.T) {
	// Seed shifts of ±5 pts shared by every variant, effects +2 and −1
	// pts, tiny trial noise: the contrasts recover the effects and the
	// residual SD is the trial noise, not the seed shifts.
	shift := []float64{0.05, -0.05, 0.02, -0.02}
	noise := [][]float64{{0.001, -0.001, 0.001, -0.001}, {-0.001, 0.001, 0.001, -0.001}, {0.001, 0.001, -0.001, -0.001}}
	effect := map[string]float64{"base": 0, "a": 0.02, "b": -0.01}
	var obs []Obs
	for vi, v := range []string{"base", "a", "b"} {
		for s := range shift {
			obs = append(obs, Obs{Variant: v, Seed: int64(s), Value: 0.6 + effect[v] + shift[s] + noise[vi][s]})
		}
	}
	f, err := FitPaired(obs, "base")
	require.NoError(t, err)
	assert.Equal(t, 6, f.DF, "(3−1)(4−1)")
	assert.Less(t, f.Sigma, 0.003)
	for v, want := range map[string]float64{"a": 0.02, "b": -0.01} {
		c, err := f.Contrast(v)
		require.NoError(t, err)
		assert.InDelta(t, want, c.Effect, 0.002)
		assert.InDelta(t, f.Sigma*math.Sqrt(2.0/4), c.SE, 1e-12, "balanced: SE = σ√(2/n)")
		assert.Equal(t, 4, c.Paired)
	}
	// A seed only one variant has carries no paired information.
	f2, err := FitPaired(append(obs, Obs{Variant: "a", Seed: 9, Value: 0.1}), "base")
	require.NoError(t, err)
	assert.Equal(t, 1, f2.Dropped)
	_, err = FitPaired([]Obs{{Variant: "a", Seed: 0, Value: 0.5}, {Variant: "b", Seed: 0, Value: 0.5}}, "base")
	assert.ErrorIs(t, err, ErrNotEstimable)
}
