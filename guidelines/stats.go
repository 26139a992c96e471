package guidelines

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
)

// Mean is the arithmetic mean of xs (NaN for none).
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// StdDev is the sample standard deviation of xs (0 for fewer than two).
func StdDev(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m := Mean(xs)
	var s float64
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)-1))
}

// Quantile is the q-quantile of sorted xs by linear interpolation between
// order statistics (Hyndman & Fan type 7, R's and NumPy's default).
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	h := q * float64(n-1)
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// BootstrapDiff returns the percentile-bootstrap confidence interval, at
// the given level (e.g. 0.95), of mean(a) − mean(b): each of resamples
// rounds draws len(a) values of a and len(b) values of b with replacement
// (seeds are resampled within their group). The same seed gives the same
// interval.
func BootstrapDiff(a, b []float64, resamples int, level float64, seed uint64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	diffs := make([]float64, resamples)
	for r := range diffs {
		diffs[r] = resampleMean(rng, a) - resampleMean(rng, b)
	}
	slices.Sort(diffs)
	alpha := (1 - level) / 2
	return Quantile(diffs, alpha), Quantile(diffs, 1-alpha)
}

func resampleMean(rng *rand.Rand, xs []float64) float64 {
	var s float64
	for range xs {
		s += xs[rng.IntN(len(xs))]
	}
	return s / float64(len(xs))
}

// streamSeed derives a bootstrap seed per figure from the analysis seed, so
// that each interval is reproducible on its own, whatever else the sweep
// holds and in whatever order it is computed.
func streamSeed(seed uint64, parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return seed ^ h.Sum64()
}

// EDF is an empirical distribution function: F(x) = share of values <= x.
type EDF struct {
	Label  string    `json:"label"`
	N      int       `json:"n"`
	Values []float64 `json:"values"` // sorted
}

// NewEDF sorts a copy of values.
func NewEDF(label string, values []float64) EDF {
	v := slices.Clone(values)
	slices.Sort(v)
	return EDF{Label: label, N: len(v), Values: v}
}

// At returns F(x).
func (e EDF) At(x float64) float64 {
	if e.N == 0 {
		return math.NaN()
	}
	i, _ := slices.BinarySearchFunc(e.Values, x, func(v, x float64) int {
		if v <= x {
			return -1
		}
		return 1
	})
	return float64(i) / float64(e.N)
}

// Fit is a least-squares line y = Intercept + Slope·x with Pearson's r.
type Fit struct {
	N         int     `json:"n"`
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	R         float64 `json:"r"`
}

// LinearFit fits y on x; ok is false for fewer than 3 points or a
// constant x.
func LinearFit(x, y []float64) (Fit, bool) {
	n := len(x)
	if n < 3 || n != len(y) {
		return Fit{N: n}, false
	}
	mx, my := Mean(x), Mean(y)
	var sxx, syy, sxy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		syy += dy * dy
		sxy += dx * dy
	}
	if sxx == 0 {
		return Fit{N: n}, false
	}
	f := Fit{N: n, Slope: sxy / sxx}
	f.Intercept = my - f.Slope*mx
	if syy > 0 {
		f.R = sxy / math.Sqrt(sxx*syy)
	}
	return f, true
}
