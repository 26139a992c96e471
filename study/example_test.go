package study_test

import (
	"fmt"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
)

// sweepObs is a small one-factor study: a baseline and two levels, four
// seeds each. Every seed shifts every variant alike (its data order),
// which the paired analysis removes; silu is 3 points better, kernel=5
// about the same as the baseline.
func sweepObs() []study.Obs {
	shift := []float64{-0.010, 0.004, 0.008, -0.002}
	noise := map[string][]float64{
		"baseline": {0.001, -0.002, 0.000, 0.001},
		"silu":     {-0.001, 0.002, 0.001, -0.002},
		"kernel=5": {0.002, 0.000, -0.002, 0.001},
	}
	effect := map[string]float64{"baseline": 0, "silu": 0.03, "kernel=5": 0.001}
	var obs []study.Obs
	for _, v := range []string{"baseline", "silu", "kernel=5"} {
		for s := range 4 {
			obs = append(obs, study.Obs{Variant: v, Seed: int64(s), Value: 0.45 + effect[v] + shift[s] + noise[v][s]})
		}
	}
	return obs
}

// The paired analysis of a one-factor sweep: value = variant + seed +
// error, the seed-to-seed variance pooled over every variant, and each
// level's contrast with the baseline with a Student-t interval.
func ExampleFitPaired() {
	fit, err := study.FitPaired(sweepObs(), "baseline")
	if err != nil {
		panic(err)
	}
	fmt.Printf("pooled SD %.2f pts on %d df\n", 100*fit.Sigma, fit.DF)
	for _, level := range []string{"silu", "kernel=5"} {
		c, err := fit.Contrast(level)
		if err != nil {
			panic(err)
		}
		lo, hi := c.Interval(0.95)
		fmt.Printf("%s: %+.2f pts, 95%% CI [%+.2f, %+.2f], p = %.2g, %d paired seeds\n",
			level, 100*c.Effect, 100*lo, 100*hi, c.P(), c.Paired)
	}
	// Output:
	// pooled SD 0.20 pts on 6 df
	// silu: +3.00 pts, 95% CI [+2.66, +3.34], p = 6.4e-07, 4 paired seeds
	// kernel=5: +0.13 pts, 95% CI [-0.21, +0.46], p = 0.4, 4 paired seeds
}

// Decide reads verdicts from a seed policy's analyses, with Holm's
// correction over the levels. With a fixed list of seeds there is one
// analysis; an adaptive policy would also say which trials the next round
// needs (Sequence.Pending).
func ExampleDecide() {
	d := study.Design{
		Baseline: "baseline",
		Levels:   []string{"silu", "kernel=5"},
		Seeds:    study.Seeds{List: []int64{0, 1, 2, 3}},
		Alpha:    0.05,
	}
	seq, err := study.Decide(sweepObs(), d)
	if err != nil {
		panic(err)
	}
	for _, dec := range seq.Decisions {
		lo, hi, _ := dec.AdjustedInterval()
		fmt.Printf("%s: %s at analysis %d (test level %.4f, adjusted CI [%+.2f, %+.2f] pts)\n",
			dec.Level, dec.Verdict, dec.Look, dec.TestLevel, 100*lo, 100*hi)
	}
	fmt.Println("complete:", seq.Complete)
	// Output:
	// silu: helps at analysis 1 (test level 0.0250, adjusted CI [+2.59, +3.41] pts)
	// kernel=5: no clear effect at analysis 1 (test level 0.0500, adjusted CI [-0.21, +0.46] pts)
	// complete: true
}

// An adaptive study that has run its first round: the next round is
// pending for the levels still open.
func ExampleDecide_adaptive() {
	d := study.Design{
		Baseline: "baseline",
		Levels:   []string{"silu", "kernel=5"},
		Seeds:    study.Seeds{Start: 2, Add: 2, Max: 6},
	}
	var firstRound []study.Obs
	for _, o := range sweepObs() {
		if o.Seed < 2 {
			firstRound = append(firstRound, o)
		}
	}
	seq, err := study.Decide(firstRound, d)
	if err != nil {
		panic(err)
	}
	for _, dec := range seq.Decisions {
		fmt.Printf("%s: %s, open %v\n", dec.Level, dec.Verdict, dec.Open)
	}
	if r := seq.Pending; r != nil {
		fmt.Printf("pending: analysis %d needs seeds %v of %v\n", r.Look, r.Seeds, r.Variants)
	}
	// Output:
	// silu: no clear effect, open true
	// kernel=5: no clear effect, open true
	// pending: analysis 2 needs seeds [2 3] of [baseline silu kernel=5]
}

// A seed policy in rounds: which seeds it can use, the analyses it runs
// and the share of alpha each analysis spends.
func ExampleSeeds() {
	s := study.Seeds{Start: 2, Add: 2, Max: 6, Offset: 100}
	fmt.Println(s)
	fmt.Println("seeds:", s.Order())
	fmt.Println("analyses at:", s.Looks())
	for i, a := range study.SpendAlpha(s.Looks(), 0.05) {
		fmt.Printf("analysis %d: alpha %.4f\n", i+1, a)
	}
	// Output:
	// start 2, add 2, max 6, offset 100
	// seeds: [100 101 102 103 104 105]
	// analyses at: [2 4 6]
	// analysis 1: alpha 0.0007
	// analysis 2: alpha 0.0157
	// analysis 3: alpha 0.0336
}

// StudyOf turns a one-factor sweep's trials (as a results store lists
// them) into a design and the observations of one metric.
func ExampleStudyOf() {
	var trials []results.Trial
	for _, o := range sweepObs() {
		factor, level := "activation", o.Variant
		if o.Variant == "baseline" {
			factor = results.BaselineFactor
		}
		trials = append(trials, results.Trial{Sweep: "example", Variant: o.Variant, Factor: factor, Level: level,
			Seed: o.Seed, Status: results.StatusDone, Metrics: map[string]float64{results.PGDAcc: o.Value}})
	}
	d, obs := study.StudyOf(trials, results.PGDAcc, study.Protocol{Seeds: study.Seeds{List: []int64{0, 1, 2, 3}}}, 0.05)
	fmt.Println("baseline:", d.Baseline, "levels:", d.Levels, "observations:", len(obs))
	// Output:
	// baseline: baseline levels: [silu kernel=5] observations: 12
}

// Holm's step-down procedure: adjusted p-values, and the per-test levels
// whose intervals agree with the verdicts.
func ExampleHolm() {
	ps := []float64{0.01, 0.04, 0.03, 0.005}
	fmt.Printf("adjusted: %.3f\n", study.Holm(ps))
	fmt.Printf("levels:   %.4f\n", study.HolmLevels(ps, 0.05))
	// Output:
	// adjusted: [0.030 0.060 0.060 0.020]
	// levels:   [0.0167 0.0250 0.0250 0.0125]
}

// The seeds per variant a sweep needs to detect a 1-point effect with 80%
// power when seeds spread by 1 point, 10 levels at a Bonferroni level.
func ExampleSeedsFor() {
	fmt.Println(study.SeedsFor(0.01, 0.01, 11, 0.05/10, 0.8, 0, 200))
	// Output:
	// 27
}

// A percentile-bootstrap interval of a difference of means; the same seed
// gives the same interval.
func ExampleBootstrapDiff() {
	inBand := []float64{0.452, 0.461, 0.447, 0.458, 0.455}
	outside := []float64{0.441, 0.438, 0.450, 0.436}
	lo, hi := study.BootstrapDiff(inBand, outside, 2000, 0.95, 1)
	fmt.Printf("mean difference %+.2f pts, 95%% CI [%+.2f, %+.2f]\n",
		100*(study.Mean(inBand)-study.Mean(outside)), 100*lo, 100*hi)
	// Output:
	// mean difference +1.34 pts, 95% CI [+0.69, +1.98]
}

// A least-squares line with Pearson's r, e.g. robust accuracy against the
// width-to-depth ratio of a sweep's variants.
func ExampleFitLine() {
	ratio := []float64{8, 12, 16, 24, 32}
	robust := []float64{0.47, 0.462, 0.455, 0.44, 0.43}
	f, ok := study.FitLine(ratio, robust)
	fmt.Printf("ok %v: slope %+.3f pts per unit, r = %.3f over %d points\n", ok, 100*f.Slope, f.R, f.N)
	// Output:
	// ok true: slope -0.168 pts per unit, r = -0.996 over 5 points
}

// An empirical distribution function of robust error, as the report's
// design-space plots draw them.
func ExampleEDF() {
	e := study.NewEDF("kernel=5", []float64{0.56, 0.54, 0.55, 0.58})
	for _, x := range []float64{0.54, 0.555, 0.6} {
		fmt.Printf("F(%.3f) = %.2f\n", x, e.At(x))
	}
	fmt.Printf("median %.3f\n", study.Quantile(e.Values, 0.5))
	// Output:
	// F(0.540) = 0.25
	// F(0.555) = 0.50
	// F(0.600) = 1.00
	// median 0.555
}
