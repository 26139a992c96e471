package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The ranks of the order-statistic interval, against the binomial tables:
// at 95% none below 6 values, then x(1)..x(6) for 6, x(6)..x(15) for 20,
// x(14)..x(27) for 40.
func TestMedianIntervalRanks(t *testing.T) {
	for _, tc := range []struct {
		n      int
		ok     bool
		lo, hi int // 1-based ranks
	}{
		{n: 1}, {n: 5},
		{n: 6, ok: true, lo: 1, hi: 6},
		{n: 10, ok: true, lo: 2, hi: 9},
		{n: 20, ok: true, lo: 6, hi: 15},
		{n: 40, ok: true, lo: 14, hi: 27},
	} {
		sorted := make([]float64, tc.n)
		for i := range sorted {
			sorted[i] = float64(i + 1)
		}
		lo, hi, ok := medianInterval(sorted, 0.95)
		require.Equal(t, tc.ok, ok, "n=%d", tc.n)
		if ok {
			assert.Equal(t, float64(tc.lo), lo, "n=%d", tc.n)
			assert.Equal(t, float64(tc.hi), hi, "n=%d", tc.n)
		}
	}
}

// Simulated bench runs: a shared machine drift per pair (lognormal, 25%),
// each side's own noise, and slow outlier steps (one in ten, 3× slower) on
// either side; robarch's true median ratio is 1.05. The interval must
// cover it at least 95% of the time (binomial noise allowed for), and be
// far narrower than what the two sides' own median intervals allow
// (robarch's low over the peer's high and the reverse), which the drift
// widens.
func TestPairedRatioCoverageSimulated(t *testing.T) {
	const truth, reps, n = 1.05, 4000, 20
	rng := rand.New(rand.NewPCG(7, 11))
	step := func(rate float64) float64 {
		r := rate * math.Exp(0.08*rng.NormFloat64())
		if rng.Float64() < 0.1 {
			r /= 3
		}
		return r
	}
	covered, width, unpaired := 0, 0.0, 0.0
	for range reps {
		a, b := make([]float64, n), make([]float64, n)
		for i := range n {
			drift := math.Exp(0.25 * rng.NormFloat64())
			a[i], b[i] = step(truth*1000*drift), step(1000*drift)
		}
		med, iv, ok := PairedRatio(a, b, RatioLevel)
		require.True(t, ok)
		require.LessOrEqual(t, iv.Lo, med)
		require.GreaterOrEqual(t, iv.Hi, med)
		if iv.Lo <= truth && truth <= iv.Hi {
			covered++
		}
		width += iv.Hi - iv.Lo
		slices.Sort(a)
		slices.Sort(b)
		aLo, aHi, _ := medianInterval(a, RatioLevel)
		bLo, bHi, _ := medianInterval(b, RatioLevel)
		unpaired += aHi/bLo - aLo/bHi
	}
	coverage := float64(covered) / reps
	t.Logf("coverage %.4f, mean width %.3f paired, %.3f unpaired", coverage, width/reps, unpaired/reps)
	// 95.9% nominal at n=20; 3 binomial SDs below 95%.
	assert.GreaterOrEqual(t, coverage, 0.95-3*math.Sqrt(0.95*0.05/reps), "coverage")
	assert.Less(t, width, unpaired/2, "mean width %.3f against %.3f unpaired", width/reps, unpaired/reps)
}

func TestPairedRatioRejectsUnpaired(t *testing.T) {
	_, _, ok := PairedRatio([]float64{1, 2}, []float64{1}, RatioLevel)
	assert.False(t, ok)
	_, _, ok = PairedRatio(nil, nil, RatioLevel)
	assert.False(t, ok)
}
