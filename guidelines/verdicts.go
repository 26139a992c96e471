package guidelines

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
)

// judgeByInterval sets a random design's verdict from the robust
// interval and notes the clean accuracy trade-off.
func (a *Analysis) judgeByInterval(e Effect) Effect {
	r, _ := e.Estimate(a.RobustMetric)
	if e.Verdict = verdictOf(r); e.Verdict == Inconclusive {
		e.Note = inconclusiveNote(r)
	}
	c, _ := e.Estimate(results.CleanAcc)
	e.TradeOff = tradeOff(c)
	return e
}

// verdictOf reads an estimate's interval: above zero helps, below hurts,
// across zero no clear effect, missing inconclusive.
func verdictOf(est Estimate) string {
	switch {
	case est.CI == nil:
		return Inconclusive
	case est.CI.Low > 0:
		return Helps
	case est.CI.High < 0:
		return Hurts
	}
	return NoClearEffect
}

// diffEstimate is mean(values) − mean(ref) with its bootstrap interval
// when both sides have at least two values; stream names the figure for
// its own bootstrap seed.
func (a *Analysis) diffEstimate(metric string, values, ref []float64, stream ...string) Estimate {
	est := Estimate{Metric: metric, Mean: study.Mean(values), BaselineMean: study.Mean(ref), N: len(values), NBaseline: len(ref)}
	est.Effect = est.Mean - est.BaselineMean
	if len(values) >= 2 && len(ref) >= 2 {
		lo, hi := study.BootstrapDiff(values, ref, a.Resamples, a.Confidence, streamSeed(a.Seed, stream...))
		est.CI = &Interval{Low: lo, High: hi}
	}
	return est
}

func inconclusiveNote(r Estimate) string {
	if r.N < 2 || r.NBaseline < 2 {
		return fmt.Sprintf("1 seed: an interval needs at least two seeds on each side; the level has %d, the baseline %d", r.N, r.NBaseline)
	}
	return "inconclusive: no interval could be formed"
}

func tradeOff(c Estimate) string {
	d := Points(c.Effect)
	switch {
	case c.CI == nil:
		return fmt.Sprintf("clean %+.2f pts (no interval)", d)
	case c.CI.Low > 0:
		return fmt.Sprintf("clean accuracy also rises (%+.2f pts)", d)
	case c.CI.High < 0:
		return fmt.Sprintf("costs %.2f pts of clean accuracy", -d)
	}
	return fmt.Sprintf("no clear change in clean accuracy (%+.2f pts)", d)
}

// rank orders effects by their robust effect, largest gain first.
func (a *Analysis) rank() {
	robust := func(e Effect) float64 { r, _ := e.Estimate(a.RobustMetric); return r.Effect }
	slices.SortStableFunc(a.Effects, func(x, y Effect) int {
		if c := cmp.Compare(robust(y), robust(x)); c != 0 {
			return c
		}
		return cmp.Compare(x.Label(), y.Label())
	})
	for i := range a.Effects {
		a.Effects[i].Rank = i + 1
	}
}

// summarise condenses effects per factor, in the package's factor order
// then any unknown factors alphabetically.
func (a *Analysis) summarise() {
	byFactor := map[string]*FactorSummary{}
	var names []string
	for _, e := range a.Effects {
		s := byFactor[e.Factor]
		if s == nil {
			s = &FactorSummary{Factor: e.Factor}
			byFactor[e.Factor] = s
			names = append(names, e.Factor)
		}
		s.Levels = append(s.Levels, e.Level)
		r, _ := e.Estimate(a.RobustMetric)
		if e.Verdict == Helps && (s.Best == "" || r.Effect > s.BestEffect) {
			s.Best, s.BestEffect = e.Level, r.Effect
		}
	}
	slices.SortFunc(names, compareFactors)
	for _, n := range names {
		s := byFactor[n]
		s.Verdict = a.factorVerdict(n)
		s.Reference = a.References[n]
		slices.Sort(s.Levels)
		a.Factors = append(a.Factors, *s)
	}
}

func (a *Analysis) factorVerdict(factor string) string {
	var helps, hurts, unclear, none int
	for _, e := range a.Effects {
		if e.Factor != factor {
			continue
		}
		switch e.Verdict {
		case Helps:
			helps++
		case Hurts:
			hurts++
		case NoClearEffect:
			unclear++
		default:
			none++
		}
	}
	switch {
	case helps > 0:
		return Helps
	case hurts > 0 && unclear == 0:
		return Hurts
	case hurts > 0:
		return "hurts at some levels"
	case unclear > 0:
		return NoClearEffect
	}
	return Inconclusive
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
