package guidelines

import (
	"encoding/json"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
)

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

// Points converts a fraction to percentage points.
func Points(f float64) float64 { return 100 * f }
