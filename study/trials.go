package study

import (
	"github.com/robarch/robarch/results"
)

// Protocol is what the analysis needs to know about how a sweep's trials
// were run; it travels in every trial's stored config.
type Protocol struct {
	Seeds Seeds
	// TestSize is the sweep's dataset.test_size (0: the dataset's whole
	// test split) and EvalSize its eval.size (0: all of it).
	TestSize, EvalSize int
}

// SharedEvalSubset reports whether every seed is evaluated on the same
// examples that were drawn from a larger test split: then the choice of
// those examples is an error no seed averages out, and Extra adds it.
// When eval.size is smaller than the test split each seed draws its own
// subset (train.Run selects it by seed), so the subset's sampling error
// is part of the seed-to-seed variance the model pools; when the whole
// test split is evaluated, the effect is the effect on that split.
func (p Protocol) SharedEvalSubset() bool {
	return p.TestSize > 0 && (p.EvalSize == 0 || p.EvalSize >= p.TestSize)
}

// StudyOf builds the design and observations of metric from a one-factor
// sweep's trials (plan order); trials not done are left out.
func StudyOf(trials []results.Trial, metric string, p Protocol, alpha float64) (Design, []Obs) {
	d := Design{Baseline: results.BaselineFactor, Seeds: p.Seeds, Alpha: alpha}
	var obs []Obs
	sum, n, evalN := map[string]float64{}, map[string]int{}, map[string]int{}
	baseline := ""
	seen := map[string]bool{} // a set: slices.Contains made this O(trials × levels)
	for _, t := range trials {
		if t.Factor == results.BaselineFactor {
			baseline = t.Variant
		} else if !seen[t.Variant] {
			seen[t.Variant] = true
			d.Levels = append(d.Levels, t.Variant)
		}
		v, ok := t.Metrics[metric]
		if t.Status != results.StatusDone || !ok {
			continue
		}
		obs = append(obs, Obs{Variant: t.Variant, Seed: t.Seed, Value: v})
		sum[t.Variant] += v
		n[t.Variant]++
		evalN[t.Variant] = max(evalN[t.Variant], int(t.Metrics[results.EvalExamples]))
	}
	if baseline != "" {
		d.Baseline = baseline
	}
	if p.SharedEvalSubset() {
		d.Extra = func(level string) (float64, float64) {
			m := min(evalN[level], evalN[d.Baseline])
			if m < 2 || n[level] == 0 || n[d.Baseline] == 0 {
				return 0, 1
			}
			return EvalSubsetVariance(sum[level]/float64(n[level]), sum[d.Baseline]/float64(n[d.Baseline]), m), float64(m - 1)
		}
	}
	return d, obs
}

// EvalSubsetVariance bounds the variance a fixed evaluation subset of m
// examples adds to a difference of two accuracies p and q measured on it:
// (p(1−p) + q(1−q))/m, the value for independent outcomes. Two networks
// tend to fail on the same examples, which makes the true value smaller,
// so the bound is conservative.
func EvalSubsetVariance(p, q float64, m int) float64 {
	return (p*(1-p) + q*(1-q)) / float64(m)
}
