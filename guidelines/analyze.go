package guidelines

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

// Options tune Analyze. The zero value is the documented default.
type Options struct {
	// Sweep picks one sweep when the trials hold several.
	Sweep string
	// Resamples is the number of bootstrap rounds per interval (default 2000).
	Resamples int
	// Confidence is the interval's level (default 0.95).
	Confidence float64
	// Seed seeds the bootstrap (default 1); the same seed gives the same
	// report.
	Seed uint64
	// RobustMetric is the metric verdicts are based on; empty picks
	// AutoAttack accuracy when every finished trial has it, else PGD.
	RobustMetric string
	// SplitSeeds also analyses two disjoint halves of the seeds and
	// reports, per level, whether they agree (Analysis.Replication).
	SplitSeeds bool

	half      string
	halfSeeds []int64
}

func (o Options) withDefaults() Options {
	if o.Resamples == 0 {
		o.Resamples = 2000
	}
	if o.Confidence == 0 {
		o.Confidence = 0.95
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// ErrNoBaseline is returned (wrapped) when no baseline trial has finished:
// without it no effect can be measured.
var ErrNoBaseline = errors.New("store has no finished baseline trial; run the sweep first")

// ErrNoTrials is returned (wrapped) for an empty store or sweep.
var ErrNoTrials = errors.New("store has no trials; plan and run a sweep first (robarch sweep)")

// Counts tallies a sweep's trials by status; Missing is every trial not
// done (pending, running or failed), which the analysis leaves out.
type Counts struct {
	Total   int `json:"total"`
	Done    int `json:"done"`
	Pending int `json:"pending"`
	Running int `json:"running"`
	Failed  int `json:"failed"`
	Missing int `json:"missing"`
}

// Group is one variant of the sweep: its finished seeds and their
// metrics.
type Group struct {
	Variant         string  `json:"variant"`
	Factor          string  `json:"factor"`
	Level           string  `json:"level"`
	Params          int64   `json:"params"`
	MACs            int64   `json:"macs"`
	WidthDepthRatio float64 `json:"width_depth_ratio"`
	// Planned counts the variant's trials in the store, Seeds the
	// finished ones (sorted), Values each metric per finished seed in
	// the same order.
	Planned int                  `json:"planned"`
	Seeds   []int64              `json:"seeds"`
	Values  map[string][]float64 `json:"values"`
	Mean    map[string]float64   `json:"mean"`
	// Levels is a random sample's level of every factor.
	Levels map[string]string `json:"levels,omitempty"`
	Spec   json.RawMessage   `json:"spec,omitempty"`
	Config json.RawMessage   `json:"-"`
}

// N is the number of finished seeds.
func (g *Group) N() int { return len(g.Seeds) }

// Interval is a confidence interval.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Estimate is a level's effect on one metric: Effect = Mean − BaselineMean
// for one-factor sweeps, the regression coefficient for random ones. CI
// is nil when it cannot be formed (a group with a single seed).
type Estimate struct {
	Metric       string    `json:"metric"`
	Effect       float64   `json:"effect"`
	Mean         float64   `json:"mean"`
	BaselineMean float64   `json:"baseline_mean"`
	CI           *Interval `json:"ci,omitempty"`
	N            int       `json:"n"`          // trials behind Mean
	NBaseline    int       `json:"n_baseline"` // trials behind BaselineMean
	// One-factor sweeps: the paired model's standard error, degrees of
	// freedom and two-sided p-value; Paired counts the seeds shared with
	// the baseline.
	SE float64 `json:"se,omitempty"`
	DF float64 `json:"df,omitempty"`
	P  float64 `json:"p,omitempty"`
	// Own: this estimate comes from the level's own paired differences
	// (paired t), the more cautious analysis for a level whose seeds
	// spread more than the pooled SD allows (study.FitPaired).
	Own    bool `json:"own_analysis,omitempty"`
	Paired int  `json:"paired,omitempty"`
	// MDE is the smallest effect the sweep detects with 80% power at the
	// Bonferroni level of its last analysis.
	MDE float64 `json:"mde,omitempty"`
	// AdjustedCI (robust metric) is the interval the verdict is read
	// from: at confidence 1 − TestLevel, after the spending over the seed
	// policy's analyses and Holm's step for the level.
	AdjustedCI *Interval `json:"adjusted_ci,omitempty"`
	TestLevel  float64   `json:"test_level,omitempty"`
}

// Effect is one factor level's outcome relative to the baseline.
type Effect struct {
	Rank      int        `json:"rank"`
	Factor    string     `json:"factor"`
	Level     string     `json:"level"`
	Variant   string     `json:"variant,omitempty"`
	Method    string     `json:"method"` // "difference of means" or "regression"
	Estimates []Estimate `json:"estimates"`
	// Verdict is on the robust metric: helps, hurts, no clear effect
	// (the interval contains zero) or inconclusive (no interval).
	Verdict  string `json:"verdict"`
	Note     string `json:"note,omitempty"`
	TradeOff string `json:"trade_off"`
	// Look is the analysis of the seed policy the verdict came from; Open
	// says the level is waiting for more seeds, Futile that it was
	// stopped because even the maximum could not make it clear.
	Look   int  `json:"look,omitempty"`
	Open   bool `json:"open,omitempty"`
	Futile bool `json:"futile,omitempty"`
	// Check is the AutoAttack check of the level (nil without one).
	Check *Check `json:"check,omitempty"`
	// Spread is the level's own seed-to-seed SD on the robust metric next
	// to the other variants' pooled one (nil with fewer than two pairs).
	Spread *study.Spread `json:"spread,omitempty"`
	// OwnAnalysis: the level's effect on the robust metric comes from its
	// own paired differences, not the pooled model (study.FitPaired).
	OwnAnalysis bool `json:"own_analysis,omitempty"`
}

// Estimate returns the effect's estimate for metric.
func (e Effect) Estimate(metric string) (Estimate, bool) {
	for _, est := range e.Estimates {
		if est.Metric == metric {
			return est, true
		}
	}
	return Estimate{}, false
}

// Label is "factor=level".
func (e Effect) Label() string { return e.Factor + "=" + e.Level }

// FactorSummary condenses a factor's levels.
type FactorSummary struct {
	Factor string   `json:"factor"`
	Levels []string `json:"levels"`
	// Best is the level with the largest robust gain among those that
	// help; empty when none does.
	Best       string  `json:"best,omitempty"`
	BestEffect float64 `json:"best_effect,omitempty"`
	Verdict    string  `json:"verdict"` // helps if any level helps, hurts if all conclusive levels hurt, …
	// Reference is the level effects are measured from in a random
	// design (empty in one-factor sweeps, where it is the baseline).
	Reference string `json:"reference,omitempty"`
}

// WidthDepth relates robust accuracy to the width-to-depth ratio, the
// parameter count and the MACs across variants (one point per variant,
// its mean over seeds).
type WidthDepth struct {
	Ratio     *study.LineFit `json:"ratio,omitempty"`      // robust accuracy on width/depth ratio
	LogParams *study.LineFit `json:"log_params,omitempty"` // on log10(params)
	LogMACs   *study.LineFit `json:"log_macs,omitempty"`   // on log10(MACs)
	// ParamsSpread and MACsSpread are max/min − 1 across variants: at a
	// fixed budget the parameter spread is tiny and so is what its fit
	// can say.
	ParamsSpread float64 `json:"params_spread"`
	MACsSpread   float64 `json:"macs_spread"`
	// Band is the RobArch paper's recommended ratio range.
	Band [2]float64 `json:"band"`
	// InBand and OutOfBand list variants by whether their ratio is in
	// Band (variants whose ratio is unknown, 0, are left out).
	InBand    []string `json:"in_band"`
	OutOfBand []string `json:"out_of_band"`
}

// FactorEDFs are the EDFs of robust error of each level of a factor.
type FactorEDFs struct {
	Factor string      `json:"factor"`
	Curves []study.EDF `json:"curves"`
}

// Analysis is everything the report shows.
type Analysis struct {
	Sweep        string   `json:"sweep"`
	Design       string   `json:"design"` // "ofat" or "random"
	RobustMetric string   `json:"robust_metric"`
	Metrics      []string `json:"metrics"`
	Confidence   float64  `json:"confidence"`
	Resamples    int      `json:"resamples"`
	Seed         uint64   `json:"seed"`
	Counts       Counts   `json:"counts"`
	// Budget is the baseline's parameter count.
	Budget   int64           `json:"budget"`
	Baseline *Group          `json:"baseline"`
	Groups   []*Group        `json:"variants"`
	Effects  []Effect        `json:"effects"`
	Factors  []FactorSummary `json:"factors"`
	// Incomplete lists variants with trials not done, as "variant: d/n done".
	Incomplete []string        `json:"incomplete,omitempty"`
	WidthDepth WidthDepth      `json:"width_depth"`
	EDFs       []FactorEDFs    `json:"edfs"`
	Findings   []FindingResult `json:"findings"`
	// Combined is every whole alternative network the sweep scored
	// against the baseline (spec factor levels: the paper's recipe, a
	// recommendation), one line each with its effect and verdict.
	Combined       []string        `json:"combined,omitempty"`
	Recommendation *Recommendation `json:"recommendation,omitempty"`
	// References is, for a random design, each factor's reference level
	// (effects are relative to it).
	References map[string]string `json:"references,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
	// Model is how one-factor effects were estimated.
	Model *Model `json:"model,omitempty"`
	// Precisions are the training and evaluation precisions the finished
	// trials recorded ("fp32", "bf16"; "fp32" for trials from before
	// robarch recorded it), each listed once.
	Precisions     []string `json:"precisions"`
	EvalPrecisions []string `json:"eval_precisions"`
	// SplitHalf names the half of the seeds analysed ("A" or "B") when
	// the analysis is one half of a split; Replication compares the
	// halves when Options.SplitSeeds asks for it.
	SplitHalf   string       `json:"split_half,omitempty"`
	Replication *Replication `json:"replication,omitempty"`
	halfSeeds   []int64
}

// metricOrder is the order metrics are shown in.
var metricOrder = []string{results.CleanAcc, results.PGDAcc, results.AAAcc}

// metricNames are the display names of the well-known metrics: long
// for prose, short for table headers.
var metricNames = map[string][2]string{
	results.CleanAcc: {"clean accuracy", "clean"},
	results.PGDAcc:   {"PGD accuracy", "PGD"},
	results.AAAcc:    {"AutoAttack accuracy", "AA"},
}

// MetricName is a metric's display name.
func MetricName(m string) string {
	if n, ok := metricNames[m]; ok {
		return n[0]
	}
	return m
}

func shortMetric(m string) string {
	if n, ok := metricNames[m]; ok {
		return n[1]
	}
	return m
}

// Analyze computes effects, verdicts, the width/depth analysis, EDFs and
// the paper comparison from a sweep's trials. It leaves out trials not
// done and counts them; it refuses trials with no finished baseline, from
// several sweeps (unless opts.Sweep picks one), or whose metrics are
// missing or not fractions.
func Analyze(trials []results.Trial, opts Options) (*Analysis, error) {
	opts = opts.withDefaults()
	if opts.Confidence <= 0 || opts.Confidence >= 1 {
		return nil, fmt.Errorf("confidence %g: want a level in (0, 1), e.g. 0.95", opts.Confidence)
	}
	if opts.Resamples < 100 {
		return nil, fmt.Errorf("resamples %d: want at least 100 bootstrap rounds (default 2000)", opts.Resamples)
	}
	trials, sweep, err := pickSweep(trials, opts.Sweep)
	if err != nil {
		return nil, err
	}
	a := &Analysis{Sweep: sweep, Confidence: opts.Confidence, Resamples: opts.Resamples, Seed: opts.Seed,
		SplitHalf: opts.half, halfSeeds: opts.halfSeeds}
	done, err := countAndCheck(a, trials)
	if err != nil {
		return nil, err
	}
	a.Precisions, a.EvalPrecisions = precisions(done, "precision"), precisions(done, "eval_precision")
	if len(a.Precisions) > 1 {
		a.Notes = append(a.Notes, "trials trained at different precisions ("+strings.Join(a.Precisions, ", ")+"): effects mix them")
	}
	if a.RobustMetric, err = pickRobust(done, opts.RobustMetric); err != nil {
		return nil, err
	}
	for _, m := range metricOrder {
		if m == results.CleanAcc || m == a.RobustMetric || allHave(done, m) {
			a.Metrics = append(a.Metrics, m)
		} else if n := countHaving(done, m); n > 0 {
			a.Notes = append(a.Notes, fmt.Sprintf("%s is left out: only %d of %d finished trials have it", m, n, len(done)))
		}
	}
	if err := checkMetrics(done, a.Metrics); err != nil {
		return nil, err
	}
	if err := a.group(trials); err != nil {
		return nil, err
	}
	switch a.Design {
	case "ofat":
		if err := a.ofatEffects(trials); err != nil {
			return nil, err
		}
	case RandomFactor:
		if err := a.randomEffects(opts); err != nil {
			return nil, err
		}
	}
	a.rank()
	if opts.SplitSeeds {
		if a.Design != "ofat" {
			return nil, fmt.Errorf("--split-seeds needs a one-factor sweep; this one is %s", a.Design)
		}
		p, _ := a.protocol(trials)
		rep, err := splitSeeds(trials, opts, p.Seeds.Order())
		switch {
		case errors.Is(err, errTooFewSeeds):
			// A study that settled every level early has too few seeds
			// to split; that is not a reason to fail its report.
			a.Notes = append(a.Notes, err.Error())
		case err != nil:
			return nil, err
		}
		a.Replication = rep
	}
	a.summarise()
	a.widthDepth()
	a.edfs()
	a.Findings = a.compareFindings()
	a.Combined = a.combined()
	return a, nil
}

func pickSweep(trials []results.Trial, name string) ([]results.Trial, string, error) {
	if len(trials) == 0 {
		return nil, "", ErrNoTrials
	}
	var names []string
	for _, t := range trials {
		if !slices.Contains(names, t.Sweep) {
			names = append(names, t.Sweep)
		}
	}
	slices.Sort(names)
	if name == "" {
		if len(names) > 1 {
			return nil, "", fmt.Errorf("the store holds %d sweeps (%s): pick one with --sweep", len(names), strings.Join(names, ", "))
		}
		return trials, names[0], nil
	}
	if !slices.Contains(names, name) {
		return nil, "", fmt.Errorf("sweep %q is not in the store; it holds: %s", name, strings.Join(names, ", "))
	}
	var out []results.Trial
	for _, t := range trials {
		if t.Sweep == name {
			out = append(out, t)
		}
	}
	return out, name, nil
}

// countAndCheck tallies statuses, decides the design and returns the done
// trials; it fails when nothing usable is there.
func countAndCheck(a *Analysis, trials []results.Trial) ([]results.Trial, error) {
	var done []results.Trial
	ofat, random, baseline := false, false, false
	for _, t := range trials {
		a.Counts.Total++
		switch t.Status {
		case results.StatusDone:
			a.Counts.Done++
			done = append(done, t)
			if t.Factor == results.BaselineFactor {
				baseline = true
			}
		case results.StatusPending:
			a.Counts.Pending++
		case results.StatusRunning:
			a.Counts.Running++
		case results.StatusFailed:
			a.Counts.Failed++
		default:
			return nil, fmt.Errorf("trial %s: status %q: want one of pending, running, done, failed", t.Key(), t.Status)
		}
		switch t.Factor {
		case results.BaselineFactor:
		case RandomFactor:
			random = true
		case "":
			return nil, fmt.Errorf("trial %s has no factor; is this a robarch sweep store?", t.Key())
		default:
			ofat = true
		}
	}
	a.Counts.Missing = a.Counts.Total - a.Counts.Done
	if ofat && random {
		return nil, fmt.Errorf("sweep %s mixes random samples with one-factor variants; analyse them as separate sweeps", a.Sweep)
	}
	a.Design = "ofat"
	if random {
		a.Design = RandomFactor
	}
	if len(done) == 0 {
		return nil, fmt.Errorf("sweep %s: no finished trial yet (%d pending, %d running, %d failed): %w",
			a.Sweep, a.Counts.Pending, a.Counts.Running, a.Counts.Failed, ErrNoBaseline)
	}
	if !baseline {
		return nil, fmt.Errorf("sweep %s (%d of %d trials done): %w", a.Sweep, a.Counts.Done, a.Counts.Total, ErrNoBaseline)
	}
	return done, nil
}

// precisions lists the values of an environment key over trials, fp32
// where a trial does not record it.
func precisions(trials []results.Trial, key string) []string {
	var out []string
	for _, t := range trials {
		p := t.Env[key]
		if p == "" {
			p = "fp32"
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func allHave(trials []results.Trial, metric string) bool {
	for _, t := range trials {
		if _, ok := t.Metrics[metric]; !ok {
			return false
		}
	}
	return true
}

func countHaving(trials []results.Trial, metric string) int {
	n := 0
	for _, t := range trials {
		if _, ok := t.Metrics[metric]; ok {
			n++
		}
	}
	return n
}

func pickRobust(done []results.Trial, want string) (string, error) {
	switch want {
	case "":
		if allHave(done, results.AAAcc) {
			return results.AAAcc, nil
		}
		return results.PGDAcc, nil
	case results.AAAcc, results.PGDAcc:
		return want, nil
	}
	return "", fmt.Errorf("robust metric %q: want %s or %s", want, results.AAAcc, results.PGDAcc)
}

func checkMetrics(done []results.Trial, metrics []string) error {
	for _, t := range done {
		for _, m := range metrics {
			v, ok := t.Metrics[m]
			if !ok {
				return fmt.Errorf("finished trial %s has no %s metric (it has %s); the store was not written by a compatible robarch sweep",
					t.Key(), m, strings.Join(slices.Sorted(maps.Keys(t.Metrics)), ", "))
			}
			if math.IsNaN(v) || v < 0 || v > 1 {
				return fmt.Errorf("finished trial %s: %s = %g: want a fraction in [0, 1]", t.Key(), m, v)
			}
		}
	}
	return nil
}

// group collects trials by variant in the order the store lists them
// (plan order), baseline first.
func (a *Analysis) group(trials []results.Trial) error {
	byVariant := map[string]*Group{}
	var order []*Group
	for _, t := range trials {
		g := byVariant[t.Variant]
		if g == nil {
			g = &Group{Variant: t.Variant, Factor: t.Factor, Level: t.Level, Params: t.Params, MACs: t.MACs,
				WidthDepthRatio: t.WidthDepthRatio, Values: map[string][]float64{}, Mean: map[string]float64{}}
			if t.Factor == RandomFactor {
				lv, err := sweep.ParseSample(t.Level)
				if err != nil {
					return fmt.Errorf("trial %s: %w", t.Key(), err)
				}
				g.Levels = lv
			}
			byVariant[t.Variant] = g
			order = append(order, g)
		} else if g.Factor != t.Factor || g.Level != t.Level {
			return fmt.Errorf("variant %s appears as %s=%s and %s=%s; the store is inconsistent", t.Variant, g.Factor, g.Level, t.Factor, t.Level)
		}
		g.Planned++
		if len(g.Spec) == 0 && len(t.Spec) > 0 {
			g.Spec, g.Config = t.Spec, t.Config
		}
	}
	// Seeds in ascending order so Values line up across metrics and runs.
	done := slices.Clone(trials)
	slices.SortStableFunc(done, func(x, y results.Trial) int { return cmp.Compare(x.Seed, y.Seed) })
	for _, t := range done {
		if t.Status != results.StatusDone {
			continue
		}
		g := byVariant[t.Variant]
		g.Seeds = append(g.Seeds, t.Seed)
		for _, m := range a.Metrics {
			g.Values[m] = append(g.Values[m], t.Metrics[m])
		}
	}
	for _, g := range order {
		if g.N() < g.Planned {
			a.Incomplete = append(a.Incomplete, fmt.Sprintf("%s: %d/%d done", g.Variant, g.N(), g.Planned))
		}
		if g.N() == 0 {
			continue
		}
		for _, m := range a.Metrics {
			g.Mean[m] = study.Mean(g.Values[m])
		}
		if g.Factor == results.BaselineFactor {
			a.Baseline = g
		}
		a.Groups = append(a.Groups, g)
	}
	slices.SortStableFunc(a.Groups, func(x, y *Group) int {
		return cmp.Compare(boolRank(x.Factor != results.BaselineFactor), boolRank(y.Factor != results.BaselineFactor))
	})
	a.Budget = a.Baseline.Params
	return nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

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

// Points converts a fraction to percentage points.
func Points(f float64) float64 { return 100 * f }

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

// widthDepth fits robust accuracy across variants.
func (a *Analysis) widthDepth() {
	wd := WidthDepth{Band: PaperRatioBand}
	var ratio, lp, lm, yr, yp, ym []float64
	for _, g := range a.Groups {
		y := g.Mean[a.RobustMetric]
		if g.WidthDepthRatio > 0 {
			ratio, yr = append(ratio, g.WidthDepthRatio), append(yr, y)
			if g.WidthDepthRatio >= wd.Band[0] && g.WidthDepthRatio <= wd.Band[1] {
				wd.InBand = append(wd.InBand, g.Variant)
			} else {
				wd.OutOfBand = append(wd.OutOfBand, g.Variant)
			}
		}
		if g.Params > 0 {
			lp, yp = append(lp, math.Log10(float64(g.Params))), append(yp, y)
		}
		if g.MACs > 0 {
			lm, ym = append(lm, math.Log10(float64(g.MACs))), append(ym, y)
		}
	}
	wd.ParamsSpread, wd.MACsSpread = spread(lp), spread(lm)
	if f, ok := study.FitLine(ratio, yr); ok {
		wd.Ratio = &f
	}
	if f, ok := study.FitLine(lp, yp); ok {
		wd.LogParams = &f
	}
	if f, ok := study.FitLine(lm, ym); ok {
		wd.LogMACs = &f
	}
	a.WidthDepth = wd
}

// spread is max/min − 1 of values given as log10.
func spread(logs []float64) float64 {
	if len(logs) == 0 {
		return 0
	}
	return math.Pow(10, slices.Max(logs)-slices.Min(logs)) - 1
}

// edfs builds, per factor, the EDF of robust error (1 − robust accuracy)
// over the trials of each level, the baseline's as a reference.
func (a *Analysis) edfs() {
	robustErr := func(gs ...*Group) []float64 {
		var out []float64
		for _, g := range gs {
			for _, v := range g.Values[a.RobustMetric] {
				out = append(out, 1-v)
			}
		}
		return out
	}
	base := study.NewEDF("baseline", robustErr(a.Baseline))
	for _, fs := range a.Factors {
		set := FactorEDFs{Factor: fs.Factor}
		if a.Design == "ofat" {
			set.Curves = append(set.Curves, base)
		}
		levels := fs.Levels
		if a.Design == RandomFactor {
			levels = nil
			for _, g := range a.Groups {
				if l, ok := g.Levels[fs.Factor]; ok && !slices.Contains(levels, l) {
					levels = append(levels, l)
				}
			}
			slices.Sort(levels)
		}
		for _, level := range levels {
			var gs []*Group
			for _, g := range a.Groups {
				if (g.Factor == fs.Factor && g.Level == level) || g.Levels[fs.Factor] == level {
					gs = append(gs, g)
				}
			}
			set.Curves = append(set.Curves, study.NewEDF(fs.Factor+"="+level, robustErr(gs...)))
		}
		a.EDFs = append(a.EDFs, set)
	}
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
