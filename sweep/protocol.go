package sweep

import (
	"slices"

	"github.com/robarch/robarch/internal/attackname"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
)

// RobustMetric is the metric a sweep's verdicts and seed rounds are based
// on: AutoAttack accuracy when every trial runs AutoAttack, else PGD.
func (f File) RobustMetric() string {
	for _, a := range f.Eval.Attacks {
		if n, err := attackname.Parse(a); err == nil && n.IsStandardAutoAttack() {
			return results.AAAcc
		}
	}
	return results.PGDAcc
}

// Protocol is what the analysis reads of the sweep's design.
func (f File) Protocol() study.Protocol {
	return study.Protocol{Seeds: f.Seeds, TestSize: f.Dataset.TestSize, EvalSize: f.Eval.Size}
}

// Alpha is the family-wise error rate of a sweep's verdicts, the one the
// guidelines report uses by default.
const Alpha = 0.05

// Checks reports whether seed is among the first eval.check.seeds seeds
// of the sweep's seed order: those trials also run the AutoAttack check.
func (f *File) Checks(seed int64) bool {
	if len(f.Eval.Check.Attacks) == 0 {
		return false
	}
	order := f.Seeds.Order()
	return slices.Contains(order[:min(len(order), f.Eval.Check.Seeds)], seed)
}
