package guidelines

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
)

func effectOf(t *testing.T, a *Analysis, label string) Effect {
	t.Helper()
	for _, e := range a.Effects {
		if e.Label() == label {
			return e
		}
	}
	t.Fatalf("no effect %s", label)
	return Effect{}
}

func TestAnalyzeVerdicts(t *testing.T) {
	trials := synthSweep(t, 4, true, silu, kernel5, se25, deeper)
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	assert.Equal(t, results.AAAcc, a.RobustMetric, "every trial has AA, so verdicts use it")
	assert.Equal(t, []string{results.CleanAcc, results.PGDAcc, results.AAAcc}, a.Metrics)
	assert.Equal(t, Counts{Total: 4*4 + 1, Done: 4*4 + 1}, a.Counts)

	tests := []struct {
		label, verdict string
		robust, clean  float64
		n              int
	}{
		{"activation=silu", Helps, 0.05, 0.005, 4},
		{"kernel=5", Hurts, -0.04, -0.01, 4},
		{"se_ratio=0.25", NoClearEffect, 0, 0, 4},
		// One seed still has an interval: the seed-to-seed variance is
		// pooled over every variant, and seed 0 pairs it with the baseline.
		{"depth_width=deeper-narrower", Helps, 0.03, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			e := effectOf(t, a, tt.label)
			assert.Equal(t, tt.verdict, e.Verdict)
			r, ok := e.Estimate(results.AAAcc)
			require.True(t, ok)
			// Trial noise is at most ±0.2 pts (helpers_test.go).
			assert.InDelta(t, tt.robust, r.Effect, 0.005)
			c, _ := e.Estimate(results.CleanAcc)
			assert.InDelta(t, tt.clean, c.Effect, 0.005)
			assert.Equal(t, tt.n, r.N)
			assert.Equal(t, tt.n, r.Paired)
			require.NotNil(t, r.CI)
			require.NotNil(t, r.AdjustedCI)
			assert.Less(t, r.CI.Low, r.Effect)
			assert.Greater(t, r.CI.High, r.Effect)
			// The adjusted interval is wider and agrees with the verdict.
			assert.LessOrEqual(t, r.AdjustedCI.Low, r.CI.Low)
			assert.Equal(t, tt.verdict != NoClearEffect, r.AdjustedCI.Low > 0 || r.AdjustedCI.High < 0)
			assert.Greater(t, r.MDE, 0.0)
		})
	}
	require.NotNil(t, a.Model)
	assert.Equal(t, (5-1)*(4-1)-3, a.Model.DF[results.AAAcc], "17 trials − 5 variants − 4 seeds + 1")
	assert.Equal(t, 4, a.Model.Levels)
	assert.Contains(t, effectOf(t, a, "kernel=5").TradeOff, "pts of clean accuracy")
	assert.Contains(t, effectOf(t, a, "activation=silu").TradeOff, "clean accuracy also rises")
	assert.Contains(t, effectOf(t, a, "se_ratio=0.25").Note, "well powered")

	// Ranked by robust effect, largest gain first.
	var order []string
	for i, e := range a.Effects {
		assert.Equal(t, i+1, e.Rank)
		order = append(order, e.Label())
	}
	assert.Equal(t, []string{"activation=silu", "depth_width=deeper-narrower", "se_ratio=0.25", "kernel=5"}, order)
	for _, fs := range a.Factors {
		if fs.Factor == sweep.FactorDepthWidth {
			assert.Equal(t, Helps, fs.Verdict)
		}
	}

	// Per-factor summaries name the helpful level.
	for _, fs := range a.Factors {
		if fs.Factor == sweep.FactorActivation {
			assert.Equal(t, "silu", fs.Best)
			assert.Equal(t, Helps, fs.Verdict)
		}
		if fs.Factor == sweep.FactorKernel {
			assert.Empty(t, fs.Best)
			assert.Equal(t, Hurts, fs.Verdict)
		}
	}
}

func TestAnalyzePGDOnly(t *testing.T) {
	trials := synthSweep(t, 3, false, silu)
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	assert.Equal(t, results.PGDAcc, a.RobustMetric)
	assert.Equal(t, []string{results.CleanAcc, results.PGDAcc}, a.Metrics)
	assert.Empty(t, effectOf(t, a, "activation=silu").Note, "a clear verdict needs no caveat")

	// Two seeds, one level: one residual degree of freedom, so the t
	// interval is wide (t₀.₉₇₅ = 12.7) but honest.
	two, err := Analyze(synthSweep(t, 2, false, silu), Options{})
	require.NoError(t, err)
	e := effectOf(t, two, "activation=silu")
	r, _ := e.Estimate(results.PGDAcc)
	assert.Equal(t, 1.0, r.DF)
	assert.InDelta(t, 12.706, (r.CI.High-r.Effect)/r.SE, 0.001)
	// AutoAttack on some trials only: left out, and said so.
	trials[0].Metrics[results.AAAcc] = 0.4
	a, err = Analyze(trials, Options{})
	require.NoError(t, err)
	assert.Equal(t, results.PGDAcc, a.RobustMetric)
	assert.Contains(t, a.Notes, "aa_acc is left out: only 1 of 6 finished trials have it")
	_, err = Analyze(trials, Options{RobustMetric: "fgsm_acc"})
	assert.ErrorContains(t, err, `robust metric "fgsm_acc": want aa_acc or pgd_acc`)
}

func TestAnalyzeDeterministic(t *testing.T) {
	trials := synthSweep(t, 3, false, silu, kernel5)
	a1, err := Analyze(trials, Options{Seed: 7})
	require.NoError(t, err)
	// Reversed input order: the same intervals (seeds are sorted, streams per figure).
	rev := make([]results.Trial, len(trials))
	for i, tr := range trials {
		rev[len(trials)-1-i] = tr
	}
	a2, err := Analyze(rev, Options{Seed: 7})
	require.NoError(t, err)
	for i := range a1.Effects {
		assert.Equal(t, a1.Effects[i].Estimates, a2.Effects[i].Estimates)
	}
}

func TestPartialSweep(t *testing.T) {
	trials := synthSweep(t, 3, false, silu, kernel5)
	trials = withStatus(trials, "kernel=5", 2, results.StatusPending)
	trials = withStatus(trials, "activation=silu", 1, results.StatusRunning)
	trials = withStatus(trials, "activation=silu", 2, results.StatusFailed)
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	assert.Equal(t, Counts{Total: 9, Done: 6, Pending: 1, Running: 1, Failed: 1, Missing: 3}, a.Counts)
	assert.ElementsMatch(t, []string{"activation=silu: 1/3 done", "kernel=5: 2/3 done"}, a.Incomplete)
	silu := effectOf(t, a, "activation=silu")
	r, _ := silu.Estimate(results.PGDAcc)
	assert.Equal(t, 1, r.N)
	assert.NotNil(t, r.CI, "one finished seed, paired with the baseline's, and the pooled variance")
	k := effectOf(t, a, "kernel=5")
	r, _ = k.Estimate(results.PGDAcc)
	assert.Equal(t, 2, r.N)
	assert.Equal(t, 3, r.NBaseline)
}

func TestAnalyzeRefuses(t *testing.T) {
	good := func() []results.Trial { return synthSweep(t, 2, false, silu) }
	tests := []struct {
		name   string
		trials func() []results.Trial
		is     error
		msg    string
	}{
		{"empty store", func() []results.Trial { return nil }, ErrNoTrials, "store has no trials"},
		{"nothing finished", func() []results.Trial {
			ts := good()
			for i := range ts {
				ts[i].Status, ts[i].Metrics = results.StatusPending, nil
			}
			return ts
		}, ErrNoBaseline, "no finished trial yet (4 pending"},
		{"baseline unfinished", func() []results.Trial {
			ts := withStatus(good(), "baseline", 0, results.StatusFailed)
			return withStatus(ts, "baseline", 1, results.StatusPending)
		}, ErrNoBaseline, "store has no finished baseline trial; run the sweep first"},
		{"two sweeps", func() []results.Trial {
			ts := good()
			ts[0].Sweep = "other"
			return ts
		}, nil, "the store holds 2 sweeps (other, synth): pick one with --sweep"},
		{"metric not a fraction", func() []results.Trial {
			ts := good()
			ts[1].Metrics[results.PGDAcc] = 45
			return ts
		}, nil, "pgd_acc = 45: want a fraction in [0, 1]"},
		{"metric missing", func() []results.Trial {
			ts := good()
			delete(ts[2].Metrics, results.CleanAcc)
			return ts
		}, nil, "has no clean_acc metric"},
		{"mixed designs", func() []results.Trial {
			ts := good()
			ts[3].Factor, ts[3].Level = RandomFactor, "kernel=5"
			return ts
		}, nil, "mixes random samples with one-factor variants"},
		{"unknown status", func() []results.Trial {
			ts := good()
			ts[0].Status = "paused"
			return ts
		}, nil, `status "paused": want one of pending, running, done, failed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Analyze(tt.trials(), Options{})
			require.Error(t, err)
			if tt.is != nil {
				assert.True(t, errors.Is(err, tt.is), "%v is not %v", err, tt.is)
			}
			assert.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestPickSweep(t *testing.T) {
	ts := synthSweep(t, 2, false, silu)
	other := synthSweep(t, 2, false, kernel5)
	for i := range other {
		other[i].Sweep = "other"
	}
	all := append(ts, other...)
	a, err := Analyze(all, Options{Sweep: "other"})
	require.NoError(t, err)
	assert.Equal(t, "other", a.Sweep)
	require.Len(t, a.Effects, 1)
	assert.Equal(t, "kernel=5", a.Effects[0].Label())
	_, err = Analyze(all, Options{Sweep: "nope"})
	assert.ErrorContains(t, err, `sweep "nope" is not in the store; it holds: other, synth`)
}

// A level whose seeds swing far more than the other variants' is flagged:
// its interval rests on a pooled SD that does not describe it.
func TestSpreadFlagsANoisyLevel(t *testing.T) {
	trials := synthSweep(t, 6, false, silu, kernel5, se25)
	swing := []float64{0.03, -0.03, 0.025, -0.025, 0.02, -0.02}
	for i := range trials {
		if trials[i].Variant == "se_ratio=0.25" {
			trials[i].Metrics[results.PGDAcc] += swing[trials[i].Seed]
		}
	}
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	for _, tt := range []struct {
		label   string
		flagged bool
	}{{"se_ratio=0.25", true}, {"activation=silu", false}, {"kernel=5", false}} {
		e := effectOf(t, a, tt.label)
		require.NotNil(t, e.Spread, tt.label)
		assert.Equal(t, 6, e.Spread.Pairs)
		assert.Equal(t, tt.flagged, e.Spread.P < SpreadAlpha, "%s: p=%.4f", tt.label, e.Spread.P)
		assert.Equal(t, tt.flagged, strings.Contains(e.Note, "disagree more than the pooled SD"), e.Note)
	}
}

// The AutoAttack check flags a level whose PGD gain vanishes under the
// stronger attack on the same images, and nothing else: not a level
// whose check set shows no PGD gain either, nor one that hurts.
func TestCheckFlagsOnlyAVanishingGain(t *testing.T) {
	trials := synthSweep(t, 3, false, silu, kernel5, se25)
	// Check-set accuracies (PGD, AA) on seed 0, per variant.
	check := map[string][2]float64{
		results.BaselineFactor: {0.50, 0.48},
		"activation=silu":      {0.54, 0.47}, // +4 under PGD, −1 under AA: masking?
		"kernel=5":             {0.46, 0.44}, // hurts under both
		"se_ratio=0.25":        {0.50, 0.48}, // no gain under either
	}
	for i := range trials {
		if c, ok := check[trials[i].Variant]; ok && trials[i].Seed == 0 {
			trials[i].Metrics[results.CheckPGDAcc] = c[0]
			trials[i].Metrics[results.CheckAAAcc] = c[1]
			trials[i].Metrics[results.CheckExamples] = 300
		}
	}
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	for label, flagged := range map[string]bool{"activation=silu": true, "kernel=5": false, "se_ratio=0.25": false} {
		e := effectOf(t, a, label)
		require.NotNil(t, e.Check, label)
		assert.Equal(t, flagged, e.Check.Flagged, label)
		assert.Equal(t, flagged, strings.Contains(e.Note, "possible gradient masking"), "%s: %s", label, e.Note)
	}
	e := effectOf(t, a, "activation=silu")
	assert.InDelta(t, 0.04, e.Check.PGDGain, 1e-9)
	assert.InDelta(t, -0.01, e.Check.AAGain, 1e-9)
}

// Two stores compared level by level: the same trials agree everywhere; a
// store trained in bf16 against one in fp32 (train.precision auto on two
// machines) is named in a note, and only then.
func TestCompareNotesDifferentPrecisions(t *testing.T) {
	withPrecision := func(trials []results.Trial, p string) []results.Trial {
		out := slices.Clone(trials)
		for i := range out {
			out[i].Env = map[string]string{"precision": p}
		}
		return out
	}
	trials := synthSweep(t, 3, false, silu, kernel5)
	for _, tc := range []struct {
		name  string
		a, b  string
		noted bool
	}{
		{"same precision", "bf16", "bf16", false},
		{"unrecorded is fp32", "", "fp32", false},
		{"bf16 against fp32", "bf16", "fp32", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Analyze(withPrecision(trials, tc.a), Options{Seed: 7})
			require.NoError(t, err)
			b, err := Analyze(withPrecision(trials, tc.b), Options{Seed: 7})
			require.NoError(t, err)
			r := Compare(a, b, "A", "B")
			assert.Equal(t, len(r.Levels), r.Agree, "identical metrics agree on every level")
			if !tc.noted {
				assert.Empty(t, r.Notes)
				return
			}
			require.Len(t, r.Notes, 1)
			assert.Contains(t, r.Notes[0], "A: bf16; B: fp32")
		})
	}
}
