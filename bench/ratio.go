package bench

import (
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// RatioLevel is the confidence of the paired ratio's interval.
const RatioLevel = 0.95

// Interval is a confidence interval [Lo, Hi] at Level.
type Interval struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Level float64 `json:"level"`
}

// PairedRatio is the median of the step-by-step ratios robarch[i] /
// peer[i] and its distribution-free interval at level. Steps i of the two
// sides ran next to each other (in the same block), so a pair shares the
// machine's state at that moment and the ratio cancels its drift, which
// moves both sides' rates by up to 25% between invocations here. ok is
// false when there are too few pairs for an interval at level (fewer than
// 6 at 95%) or the sides' lengths differ.
func PairedRatio(robarch, peer []float64, level float64) (median float64, iv Interval, ok bool) {
	if len(robarch) != len(peer) || len(robarch) == 0 {
		return 0, Interval{}, false
	}
	ratios := make([]float64, len(robarch))
	for i := range robarch {
		ratios[i] = robarch[i] / peer[i]
	}
	slices.Sort(ratios)
	median = quantile(ratios, 0.5)
	lo, hi, ok := medianInterval(ratios, level)
	return median, Interval{Lo: lo, Hi: hi, Level: level}, ok
}

// pairedRatioAt is PairedRatio at RatioLevel as a result holds it: the
// median, and its interval or nil when there is none.
func pairedRatioAt(robarch, peer []float64) (float64, *Interval) {
	m, iv, ok := PairedRatio(robarch, peer, RatioLevel)
	if !ok {
		return m, nil
	}
	return m, &iv
}

// medianInterval is the order-statistic interval [x(k), x(n+1-k)] for the
// median of sorted independent values, with k the largest rank at which
// P(Binomial(n, 1/2) < k) <= (1-level)/2: its coverage is at least level
// whatever the values' (continuous) distribution, which step rates —
// skewed, with slow outliers — do not let a normal interval promise.
func medianInterval(sorted []float64, level float64) (lo, hi float64, ok bool) {
	n := len(sorted)
	b := distuv.Binomial{N: float64(n), P: 0.5}
	k := 0
	for j := 1; j <= n/2; j++ {
		if b.CDF(float64(j-1)) > (1-level)/2 {
			break
		}
		k = j
	}
	if k == 0 {
		return 0, 0, false
	}
	return sorted[k-1], sorted[n-k], true
}
