package guidelines

import (
	"fmt"
	"math"
	"slices"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

// Power is the power the minimum detectable effects are quoted at.
const Power = 0.8

// SpreadAlpha is the level of the per-level check that a level's seeds
// spread no more than the pooled SD assumes (study owns it).
const SpreadAlpha = study.SpreadAlpha

// Model says how the one-factor effects were estimated, for the report.
type Model struct {
	Name string `json:"name"`
	// SD and DF are the pooled residual standard deviation (fraction) and
	// its degrees of freedom, per metric, from all finished trials.
	SD map[string]float64 `json:"sd"`
	DF map[string]int     `json:"df"`
	// Correction names the multiplicity correction of the verdicts.
	Correction string  `json:"correction"`
	Alpha      float64 `json:"alpha"`
	Levels     int     `json:"levels"`
	// Seeds is the seed policy as the sweep file wrote it.
	Seeds    string `json:"seeds"`
	Adaptive bool   `json:"adaptive"`
	// Looks are the analyses run so far (one for a fixed seed list).
	Looks []LookInfo `json:"looks"`
	// Pending is the round of trials the study still waits for.
	Pending *study.Round `json:"pending,omitempty"`
	// EvalError says how the evaluation set's sampling error enters.
	EvalError string `json:"eval_error"`
	// SeedsFor1pt is the seeds per variant a 1-point effect on the robust
	// metric needs (80% power, Bonferroni level); 0 when beyond 200.
	SeedsFor1pt int `json:"seeds_for_1pt"`
	// Dropped counts trials left out because no other variant shares
	// their seed.
	Dropped int `json:"dropped,omitempty"`
}

// LookInfo is one analysis of the seed policy.
type LookInfo struct {
	Seeds int     `json:"seeds"`
	Alpha float64 `json:"alpha"`
	SD    float64 `json:"sd,omitempty"` // absent while DF is 0
	DF    int     `json:"df"`
}

// Check is the AutoAttack check of one level: its gain over the baseline
// under the sweep's PGD and under the stronger attacks, on one fixed
// subset for the same seeds.
type Check struct {
	Seeds   int     `json:"seeds"`
	N       int     `json:"n"` // examples per trial
	PGDGain float64 `json:"pgd_gain"`
	AAGain  float64 `json:"aa_gain"`
	// Drop is the level's PGD − AA accuracy on the check set, DropBase the
	// baseline's: a level whose drop is much larger than the baseline's
	// is suspected of gradient masking.
	Drop     float64 `json:"drop"`
	DropBase float64 `json:"drop_baseline"`
	// Flagged: the level gains under PGD, in the main analysis and on the
	// check set, but not under the stronger attacks on that same set. A
	// check set on which PGD shows no gain either says nothing about
	// masking.
	Flagged bool `json:"flagged"`
}

// protocol reads the sweep's seed policy and evaluation sizes from the
// stored config; trials without one (written by hand or an older robarch)
// are treated as a fixed list of the seeds they hold.
func (a *Analysis) protocol(trials []results.Trial) (study.Protocol, bool) {
	for _, t := range trials {
		if len(t.Config) == 0 {
			continue
		}
		c, err := sweep.ParseTrialConfig(t.Config)
		if err != nil {
			continue
		}
		if p := c.Sweep.Protocol(); p.Seeds.Adaptive() || len(p.Seeds.List) > 0 {
			return p, true
		}
	}
	var seeds []int64
	for _, t := range trials {
		if !slices.Contains(seeds, t.Seed) {
			seeds = append(seeds, t.Seed)
		}
	}
	slices.Sort(seeds)
	return study.Protocol{Seeds: study.Seeds{List: seeds}}, false
}

// ofatEffects estimates each level against the baseline with the paired
// additive model (package study) and reads verdicts on the robust metric
// from the seed policy's analyses with Holm's correction.
func (a *Analysis) ofatEffects(trials []results.Trial) error {
	alpha := 1 - a.Confidence
	p, known := a.protocol(trials)
	if !known {
		a.Notes = append(a.Notes, "the trials carry no sweep config; analysed as a fixed list of the seeds they hold")
	}
	if a.SplitHalf != "" {
		// A half is analysed as the fixed list of its seeds.
		p.Seeds = study.Seeds{List: a.halfSeeds}
	}
	m := newModel(p, alpha)
	a.Model = m
	f := a.fitMetrics(trials, p, alpha)
	d := f.designs[a.RobustMetric]
	m.Levels = len(d.Levels)
	seq, err := study.Decide(f.robustObs, d)
	if err != nil {
		return fmt.Errorf("analyse %s: %w", MetricName(a.RobustMetric), err)
	}
	for _, l := range seq.Looks {
		look := LookInfo{Seeds: l.Seeds, Alpha: l.Alpha, DF: l.Fit.DF}
		if l.Fit.DF > 0 {
			look.SD = l.Fit.Sigma
		}
		m.Looks = append(m.Looks, look)
	}
	m.Pending = seq.Pending
	f.lastAlpha = alpha
	if n := len(seq.Looks); n > 0 {
		f.lastAlpha = seq.Looks[n-1].Alpha
	}
	if fit := f.fits[a.RobustMetric]; fit != nil && m.Levels > 0 {
		extra := 0.0
		if d.Extra != nil && len(d.Levels) > 0 {
			extra, _ = d.Extra(d.Levels[0])
		}
		m.SeedsFor1pt = study.SeedsFor(0.01, fit.Sigma, m.Levels+1, alpha/float64(m.Levels), Power, extra, 200)
	}
	f.decisions = map[string]study.Decision{}
	for _, dec := range seq.Decisions {
		f.decisions[dec.Level] = dec
	}
	checks := a.checks(trials)
	for _, g := range a.Groups {
		if g != a.Baseline {
			a.Effects = append(a.Effects, a.judge(a.ofatEffect(g, f, checks)))
		}
	}
	return nil
}

// newModel describes the paired model for a sweep's protocol.
func newModel(p study.Protocol, alpha float64) *Model {
	m := &Model{
		Name: "paired additive model: metric = variant + seed + error, least squares over every finished trial; seed-to-seed variance pooled over all variants; Student-t intervals",
		SD:   map[string]float64{}, DF: map[string]int{},
		Correction: "Holm (step-down, family-wise) over the levels tested",
		Alpha:      alpha, Seeds: p.Seeds.String(), Adaptive: p.Seeds.Adaptive(),
	}
	switch {
	case p.SharedEvalSubset():
		m.EvalError = fmt.Sprintf("every seed is evaluated on the same %d-example subset of the test split: its sampling error is added to each effect's variance as the bound (p(1−p)+q(1−q))/n for independent outcomes (conservative), Welch–Satterthwaite degrees of freedom", p.EvalSize)
	case p.EvalSize > 0 && (p.TestSize == 0 || p.EvalSize < p.TestSize):
		m.EvalError = fmt.Sprintf("each seed is evaluated on its own %d-example subset of the test split (drawn by seed), so the subset's sampling error is part of the seed-to-seed variance the model pools", p.EvalSize)
	default:
		m.EvalError = "every seed is evaluated on the whole test split: effects are effects on that split, whose own sampling error is not included"
	}
	return m
}

// pairedFits are a one-factor sweep's paired fits and decisions.
type pairedFits struct {
	fits      map[string]*study.Fit
	designs   map[string]study.Design
	robustObs []study.Obs
	decisions map[string]study.Decision
	lastAlpha float64 // the level of the seed policy's last analysis
}

// fitMetrics fits the paired model of every metric, noting the metrics
// it cannot fit.
func (a *Analysis) fitMetrics(trials []results.Trial, p study.Protocol, alpha float64) *pairedFits {
	f := &pairedFits{fits: map[string]*study.Fit{}, designs: map[string]study.Design{}}
	for _, metric := range a.Metrics {
		d, obs := study.StudyOf(trials, metric, p, alpha)
		f.designs[metric] = d
		if metric == a.RobustMetric {
			f.robustObs = obs
		}
		fit, err := study.FitPaired(obs, d.Baseline)
		if err != nil {
			a.Notes = append(a.Notes, fmt.Sprintf("%s: %v", MetricName(metric), err))
			continue
		}
		f.fits[metric] = fit
		a.Model.DF[metric] = fit.DF
		if fit.DF > 0 { // else no SD can be estimated yet (JSON has no NaN)
			a.Model.SD[metric] = fit.Sigma
		}
		if metric == a.RobustMetric {
			a.Model.Dropped = fit.Dropped
		}
	}
	return f
}

// ofatEffect is one variant's effect on every metric, its verdict, spread
// and AutoAttack check (before judge's notes).
func (a *Analysis) ofatEffect(g *Group, f *pairedFits, checks map[string]Check) Effect {
	e := Effect{Factor: g.Factor, Level: g.Level, Variant: g.Variant, Method: "paired difference (seed-adjusted)"}
	for _, metric := range a.Metrics {
		est := Estimate{Metric: metric, Mean: g.Mean[metric], BaselineMean: a.Baseline.Mean[metric],
			N: len(g.Values[metric]), NBaseline: len(a.Baseline.Values[metric])}
		est.Effect = est.Mean - est.BaselineMean
		if fit := f.fits[metric]; fit != nil {
			a.contrast(&est, fit, f.designs[metric], g.Variant, f.lastAlpha)
		}
		if metric == a.RobustMetric {
			dec := f.decisions[g.Variant]
			if lo, hi, ok := dec.AdjustedInterval(); ok {
				est.AdjustedCI = &Interval{Low: lo, High: hi}
				est.TestLevel = dec.TestLevel
			}
			e.Verdict, e.Look, e.Open, e.Futile = dec.Verdict, dec.Look, dec.Open, dec.Futile
		}
		e.Estimates = append(e.Estimates, est)
	}
	if fit := f.fits[a.RobustMetric]; fit != nil {
		if sp, ok := fit.Spread(g.Variant); ok {
			e.Spread = &sp
		}
		e.OwnAnalysis = slices.Contains(fit.Separate, g.Variant)
	}
	if c, ok := checks[g.Variant]; ok {
		r, _ := e.Estimate(a.RobustMetric)
		c.Flagged = r.Effect > 0 && c.PGDGain > 0 && c.AAGain <= 0
		e.Check = &c
	}
	return e
}

// contrast fills est from the variant's contrast in the paired fit.
func (a *Analysis) contrast(est *Estimate, fit *study.Fit, d study.Design, variant string, lastAlpha float64) {
	c, err := fit.Contrast(variant)
	if err != nil {
		return
	}
	if d.Extra != nil {
		c = c.WithVariance(d.Extra(variant))
	}
	est.Effect, est.Paired = c.Effect, c.Paired
	est.Own = slices.Contains(fit.Separate, variant)
	if c.OK() {
		lo, hi := c.Interval(a.Confidence)
		est.CI = &Interval{Low: lo, High: hi}
		est.SE, est.DF, est.P = c.SE, c.DF, c.P()
		est.MDE = c.MDE(lastAlpha/float64(max(1, a.Model.Levels)), Power)
	}
}

// checks compares each level's AutoAttack check with the baseline's on
// the seeds both have.
func (a *Analysis) checks(trials []results.Trial) map[string]Check {
	type pair struct{ pgd, aa, n float64 }
	by := map[string]map[int64]pair{}
	for _, t := range trials {
		pg, ok1 := t.Metrics[results.CheckPGDAcc]
		aa, ok2 := t.Metrics[results.CheckAAAcc]
		if t.Status != results.StatusDone || !ok1 || !ok2 {
			continue
		}
		if by[t.Variant] == nil {
			by[t.Variant] = map[int64]pair{}
		}
		by[t.Variant][t.Seed] = pair{pg, aa, t.Metrics[results.CheckExamples]}
	}
	base := by[a.Baseline.Variant]
	out := map[string]Check{}
	for v, seeds := range by {
		if v == a.Baseline.Variant {
			continue
		}
		var c Check
		for s, x := range seeds {
			b, ok := base[s]
			if !ok {
				continue
			}
			c.Seeds++
			c.N = int(x.n)
			c.PGDGain += x.pgd - b.pgd
			c.AAGain += x.aa - b.aa
			c.Drop += x.pgd - x.aa
			c.DropBase += b.pgd - b.aa
		}
		if c.Seeds == 0 {
			continue
		}
		k := float64(c.Seeds)
		c.PGDGain, c.AAGain, c.Drop, c.DropBase = c.PGDGain/k, c.AAGain/k, c.Drop/k, c.DropBase/k
		out[v] = c
	}
	return out
}

// judge notes what a verdict means given the sweep's power, and the
// clean accuracy trade-off.
func (a *Analysis) judge(e Effect) Effect {
	r, _ := e.Estimate(a.RobustMetric)
	switch {
	case e.Verdict == Inconclusive:
		e.Note = inconclusiveNote(r)
	case e.Open && a.Model != nil && a.Model.Pending != nil:
		e.Note = fmt.Sprintf("open: round %d (more seeds) is pending", a.Model.Pending.Look)
	case e.Verdict == NoClearEffect && !math.IsNaN(r.MDE) && r.MDE > 0:
		lo, hi := r.CI.Low, r.CI.High
		if Points(r.MDE) <= 1 {
			e.Note = fmt.Sprintf("well powered: effects of ±%.2f pts would have been found (80%%); the 95%% interval rules out effects outside [%+.2f, %+.2f] pts", Points(r.MDE), Points(lo), Points(hi))
		} else {
			e.Note = fmt.Sprintf("underpowered: only effects beyond ±%.2f pts were likely to be found (80%%)", Points(r.MDE))
		}
		if e.Futile {
			e.Note += "; stopped early: the maximum seeds could not have made it clear"
		}
	}
	if sp := e.Spread; sp != nil && sp.P < SpreadAlpha {
		e.Note = joinNote(e.Note, fmt.Sprintf("its seeds disagree more than the pooled SD assumes (own SD %.2f pts vs %.2f for the other variants, p=%.3f): %s",
			Points(sp.SD), Points(sp.SD/math.Sqrt(sp.Ratio)), sp.P, ownNote(e.OwnAnalysis)))
	}
	if e.Check != nil && e.Check.Flagged {
		e.Note = joinNote(e.Note, fmt.Sprintf("AutoAttack check: its PGD gain is gone under the stronger attacks (%+.2f pts vs %+.2f under PGD on %d examples): possible gradient masking",
			Points(e.Check.AAGain), Points(e.Check.PGDGain), e.Check.N))
	}
	c, _ := e.Estimate(results.CleanAcc)
	e.TradeOff = tradeOff(c)
	return e
}

func ownNote(own bool) string {
	if own {
		return "its interval and verdict come from its own paired differences (paired t, pairs−1 df), the more cautious analysis"
	}
	return "the pooled analysis is the more cautious one here and is kept"
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
