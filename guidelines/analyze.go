package guidelines

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/robarch/robarch/results"
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
