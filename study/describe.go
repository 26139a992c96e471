package study

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat"
)

// Descriptive statistics of a sweep's results: what the guidelines report
// quotes besides the paired model's contrasts. Where gonum computes the
// same number bit for bit it is used (EDF.At is stat.CDF); the three kept
// here are not in gonum in a form that gives reports the same bytes:
//
//   - Mean adds in order. gonum's stat.Mean sums with floats.Sum, whose
//     amd64 assembly adds in SIMD lanes grouped by the slice's 16-byte
//     alignment: the same values at another address can differ in the
//     last bit (about a third of 4-value slices do), and the report prints
//     means to the last bit (guidelines.json).
//   - Quantile is Hyndman and Fan's type 7 (R's and NumPy's default);
//     gonum's stat.Quantile offers Empirical (type 1) and LinInterp
//     (type 4), which give other bootstrap interval ends.
//   - FitLine is the textbook least-squares line; stat.LinearRegression
//     and stat.Correlation use a compensated two-pass formula on top of
//     stat.Mean, the same figures up to rounding but not the same bits.

// Mean is the arithmetic mean of xs, summed in order (NaN for none).
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

// Quantile is the q-quantile of sorted xs by linear interpolation between
// order statistics (Hyndman & Fan type 7, R's and NumPy's default); NaN
// for none.
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

// At returns F(x) (NaN for an empty EDF).
func (e EDF) At(x float64) float64 {
	if e.N == 0 {
		return math.NaN()
	}
	return stat.CDF(x, stat.Empirical, e.Values, nil)
}

// LineFit is a least-squares line y = Intercept + Slope·x with Pearson's r.
type LineFit struct {
	N         int     `json:"n"`
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	R         float64 `json:"r"`
}

// FitLine fits y on x; ok is false for fewer than 3 points, slices of
// different lengths or a constant x.
func FitLine(x, y []float64) (LineFit, bool) {
	n := len(x)
	if n < 3 || n != len(y) {
		return LineFit{N: n}, false
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
		return LineFit{N: n}, false
	}
	f := LineFit{N: n, Slope: sxy / sxx}
	f.Intercept = my - f.Slope*mx
	if syy > 0 {
		f.R = sxy / math.Sqrt(sxx*syy)
	}
	return f, true
}
