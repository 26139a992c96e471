package study

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Verdicts a level ends with.
const (
	Helps      = "helps"
	Hurts      = "hurts"
	NotClear   = "no clear effect"
	NoInterval = "inconclusive"
)

// Design is what Decide needs besides the observations.
type Design struct {
	Baseline string
	// Levels are the variants compared with the baseline, in plan order.
	Levels []string
	Seeds  Seeds
	// Alpha is the family-wise error rate of the verdicts (default 0.05).
	Alpha float64
	// Extra is any variance of a level's effect that seeds do not reduce
	// (the evaluation set's sampling error, when every seed evaluates on
	// the same subset), with its degrees of freedom; nil for none.
	Extra func(level string) (variance, df float64)
}

// Decision is where one level stands.
type Decision struct {
	Level   string `json:"level"`
	Verdict string `json:"verdict"`
	// Look is the analysis (1-based) the verdict was reached at; for a
	// level still open it is the last analysis run.
	Look int `json:"look"`
	// TestLevel is the per-test significance level of that analysis
	// after the spending over looks and Holm's step for the level; the
	// adjusted interval is at confidence 1 − TestLevel and excludes zero
	// exactly when the verdict is helps or hurts.
	TestLevel float64  `json:"test_level"`
	At        Contrast `json:"at"` // the contrast at Look
	// Open: the level gets more seeds in the next round. Futile: it was
	// stopped because even the maximum seeds could not make it clear.
	Open   bool `json:"open"`
	Futile bool `json:"futile"`
}

// AdjustedInterval is the interval the verdict was read from.
func (d Decision) AdjustedInterval() (lo, hi float64, ok bool) {
	if !d.At.OK() || math.IsNaN(d.TestLevel) {
		return 0, 0, false
	}
	lo, hi = d.At.Interval(1 - d.TestLevel)
	return lo, hi, true
}

// Look is one analysis of the sequence.
type Look struct {
	Seeds int     `json:"seeds"` // seeds per open level
	Alpha float64 `json:"alpha"` // family-wise level spent at this look
	Fit   *Fit    `json:"-"`
}

// Round is a batch of trials the policy asks for next.
type Round struct {
	Look     int      `json:"look"`     // the analysis these trials feed (1-based)
	Variants []string `json:"variants"` // the baseline first, then the open levels
	Seeds    []int64  `json:"seeds"`
}

// Sequence is the replay of a study's analyses over its finished trials.
type Sequence struct {
	Design    Design
	Looks     []Look
	Decisions []Decision
	// Pending is the round still to run (or running); nil when the study
	// is complete.
	Pending *Round
	// Complete: every analysis the policy allows has been run, or no
	// level is open.
	Complete bool
}

// Decide replays the study: analysis after analysis, as far as the
// finished observations reach, with verdicts at each look by Holm's
// procedure at the look's share of alpha. It returns the trials the next
// round needs (Pending) when the study is not complete.
func Decide(obs []Obs, d Design) (*Sequence, error) {
	if d.Alpha == 0 {
		d.Alpha = 0.05
	}
	if !(d.Alpha > 0 && d.Alpha < 1) {
		return nil, fmt.Errorf("alpha %g: want a level in (0, 1), e.g. 0.05", d.Alpha)
	}
	if err := d.Seeds.Validate(); err != nil {
		return nil, err
	}
	r := newReplay(obs, d)
	for k, n := range r.looks {
		need, missing := r.round(n)
		if len(need) == 1 {
			break // no level is open
		}
		if len(missing) > 0 {
			r.seq.Pending = &Round{Look: k + 1, Variants: need, Seeds: missing}
			if d.Seeds.Adaptive() {
				break
			}
		}
		at := r.lookObs(obs, n)
		fit, err := FitPaired(at, d.Baseline)
		if errors.Is(err, ErrNotEstimable) {
			// Nothing to compare yet (e.g. only the baseline finished):
			// every level stays without an interval.
			break
		}
		if err != nil {
			return nil, fmt.Errorf("analysis %d (%d seeds): %w", k+1, n, err)
		}
		r.seq.Looks = append(r.seq.Looks, Look{Seeds: n, Alpha: r.alphas[k], Fit: fit})
		cs, ps := levelContrasts(fit, d)
		last := k == len(r.looks)-1
		r.decide(k, cs, ps)
		if last || r.seq.Pending != nil {
			break
		}
		capRound(r.dec, d, cs, len(at), n, r.looks[k+1])
	}
	for _, l := range d.Levels {
		r.seq.Decisions = append(r.seq.Decisions, *r.dec[l])
	}
	r.seq.Complete = r.seq.Pending == nil
	return r.seq, nil
}

// replay is Decide's state: the seed policy's looks and their alphas,
// which seeds each variant has, and the decisions so far.
type replay struct {
	d      Design
	order  []int64
	looks  []int
	alphas []float64
	have   map[string]map[int64]bool
	rank   map[int64]int // a seed's place in order
	seq    *Sequence
	dec    map[string]*Decision
}

func newReplay(obs []Obs, d Design) *replay {
	r := &replay{d: d, order: d.Seeds.Order(), looks: d.Seeds.Looks(), have: map[string]map[int64]bool{},
		rank: map[int64]int{}, seq: &Sequence{Design: d}, dec: make(map[string]*Decision, len(d.Levels))}
	r.alphas = SpendAlpha(r.looks, d.Alpha)
	for _, o := range obs {
		if r.have[o.Variant] == nil {
			r.have[o.Variant] = map[int64]bool{}
		}
		r.have[o.Variant][o.Seed] = true
	}
	for i, s := range r.order {
		r.rank[s] = i
	}
	for _, l := range d.Levels {
		r.dec[l] = &Decision{Level: l, Verdict: NoInterval, Open: true, TestLevel: math.NaN()}
	}
	return r
}

// round lists the variants a look of n seeds needs (the baseline and
// every open level; only the baseline when no level is open) and the
// seeds among its first n that one of them still lacks: the round is
// complete when none does.
func (r *replay) round(n int) (need []string, missing []int64) {
	need = []string{r.d.Baseline}
	for _, l := range r.d.Levels {
		if r.dec[l].Open {
			need = append(need, l)
		}
	}
	if len(need) == 1 {
		return need, nil
	}
	for _, s := range r.order[:n] {
		for _, v := range need {
			if !r.have[v][s] {
				missing = append(missing, s)
				break
			}
		}
	}
	return need, missing
}

// lookObs are the observations a look of n seeds analyses: an adaptive
// study's look's seeds only, as it was when the round was decided; a
// fixed one's every finished trial.
func (r *replay) lookObs(obs []Obs, n int) []Obs {
	if !r.d.Seeds.Adaptive() {
		return obs
	}
	var at []Obs
	for _, o := range obs {
		if k, ok := r.rank[o.Seed]; ok && k < n {
			at = append(at, o)
		}
	}
	return at
}

// levelContrasts are every level's contrast and p-value in fit (NaN for a
// level with no finished trial yet).
func levelContrasts(fit *Fit, d Design) ([]Contrast, []float64) {
	cs := make([]Contrast, len(d.Levels))
	ps := make([]float64, len(d.Levels))
	for i, l := range d.Levels {
		c, err := fit.Contrast(l)
		if err != nil {
			cs[i], ps[i] = Contrast{Variant: l, SE: math.NaN()}, math.NaN()
			continue
		}
		if d.Extra != nil {
			c = c.WithVariance(d.Extra(l))
		}
		cs[i], ps[i] = c, c.P()
	}
	return cs, ps
}

// decide updates the open levels' decisions at look k by Holm's
// procedure at the look's alpha, stopping a level that is clear or that
// could not become clear by the last look.
func (r *replay) decide(k int, cs []Contrast, ps []float64) {
	d, looks, alphas := r.d, r.looks, r.alphas
	n := looks[k]
	levels := HolmLevels(ps, alphas[k])
	last := k == len(looks)-1
	for i, l := range d.Levels {
		x := r.dec[l]
		if !x.Open {
			continue
		}
		x.Look, x.At, x.TestLevel = k+1, cs[i], levels[i]
		switch {
		case !cs[i].OK():
			x.Verdict = NoInterval
		case ps[i] < levels[i] && cs[i].Effect > 0:
			x.Verdict, x.Open = Helps, false
		case ps[i] < levels[i]:
			x.Verdict, x.Open = Hurts, false
		default:
			x.Verdict = NotClear
			if !last && !couldBecomeClear(cs[i], n, looks[len(looks)-1], alphas[len(alphas)-1], len(d.Levels), len(d.Levels)+1) {
				x.Open, x.Futile = false, true
			}
		}
		if last && (r.seq.Pending == nil || !d.Seeds.Adaptive()) {
			// A fixed list has one analysis: its verdicts stand, and
			// a pending trial only adds data to it.
			x.Open = false
		}
	}
}

// couldBecomeClear: at the maximum seeds the standard error shrinks about
// as 1/√n and the residual degrees of freedom grow to those of a complete
// design of arms variants; the level stays open while an effect one
// standard error beyond today's estimate would cross the last look's
// boundary (Bonferroni over the levels, the most demanding Holm step).
// Stopping for futility only removes chances to reject, so it cannot
// raise the error rate.
func couldBecomeClear(c Contrast, n, maxSeeds int, lastAlpha float64, levels, arms int) bool {
	seCap := c.SE * math.Sqrt(float64(n)/float64(maxSeeds))
	dfCap := math.Max(c.DF, float64((arms-1)*(maxSeeds-1)))
	return math.Abs(c.Effect)+c.SE >= TCrit(1-lastAlpha/float64(levels), dfCap)*seCap
}

// capRound keeps the next round within MaxTrials: when the open levels
// (and the baseline) would need more trials than are left, the levels
// farthest from a verdict (smallest |t|) are stopped first.
func capRound(dec map[string]*Decision, d Design, cs []Contrast, trials, n, next int) {
	if d.Seeds.MaxTrials <= 0 {
		return
	}
	var open []int
	for i, l := range d.Levels {
		if dec[l].Open {
			open = append(open, i)
		}
	}
	slices.SortStableFunc(open, func(a, b int) int {
		return cmp.Compare(math.Abs(cs[b].T()), math.Abs(cs[a].T()))
	})
	per := next - n
	for len(open) > 0 && trials+per*(len(open)+1) > d.Seeds.MaxTrials {
		l := d.Levels[open[len(open)-1]]
		dec[l].Open = false
		open = open[:len(open)-1]
	}
}
