package guidelines

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
)

func findingOf(t *testing.T, a *Analysis, id string) FindingResult {
	t.Helper()
	for _, f := range a.Findings {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding %s", id)
	return FindingResult{}
}

func TestFindingsAgainstSweep(t *testing.T) {
	trials := synthSweep(t, 3, false,
		level{factor: sweep.FactorStemType, level: "patchify:2", robust: 0.03,
			edit: func(s *arch.Spec) { s.Stem = arch.Stem{Kind: arch.StemPatch, Width: s.Stem.Width, Kernel: 2} }},
		level{factor: sweep.FactorPreact, level: "true", robust: 0,
			edit: func(s *arch.Spec) { s.Block.Order = arch.PreAct }},
		level{factor: sweep.FactorDenseRatio, level: "1", robust: 0.02,
			edit: func(s *arch.Spec) { s.Block.DenseRatio = 1 }},
		level{factor: sweep.FactorNorm, level: "identity,batchnorm,batchnorm", robust: 0.02,
			edit: func(s *arch.Spec) { s.Block.Norms = []string{"identity", "batchnorm", "batchnorm"} }},
		level{factor: sweep.FactorStageDepths, level: "2,6,1", robust: 0.03,
			edit: func(s *arch.Spec) { s.SetDepths(2, 6, 1) }},
		level{factor: sweep.FactorStageDepths, level: "5,2,2", robust: -0.03,
			edit: func(s *arch.Spec) { s.SetDepths(5, 2, 2) }},
		level{factor: sweep.FactorDepthWidth, level: "deeper-narrower", robust: 0.03,
			edit: func(s *arch.Spec) { s.SetDepths(5, 5, 5) }},
		level{factor: sweep.FactorDepthWidth, level: "shallower-wider", robust: -0.02,
			edit: func(s *arch.Spec) { s.SetDepths(2, 2, 2) }},
		level{factor: sweep.FactorStemWidth, level: "32", robust: 0,
			edit: func(s *arch.Spec) { s.Stem.Width = 32 }},
		level{factor: sweep.FactorKernel, level: "5", robust: -0.02, edit: func(s *arch.Spec) { s.SetKernel(5) }},
		level{factor: sweep.FactorKernel, level: "7", robust: 0.02, edit: func(s *arch.Spec) { s.SetKernel(7) }},
		level{factor: sweep.FactorActivation, level: "elu", robust: 0.01,
			edit: func(s *arch.Spec) { s.Block.Activations = []string{"elu", "elu", "elu"} }},
	)
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	require.Len(t, a.Findings, len(Findings()))

	tests := []struct {
		id, outcome string
		evidence    int // levels that bear on the finding
	}{
		{"conv-stem", Disagrees, 1},         // patchify helped
		{"no-preact", Agrees, 1},            // pre-activation: no clear effect
		{"no-dense", Disagrees, 1},          // dense connections helped
		{"fewer-norms", Agrees, 1},          // dropping a norm helped
		{"stage-depths", Agrees, 1},         // 2,6,1 helped; 5,2,2 is unrelated (baseline 3,3,3 is not stage-3 heavy either)
		{"deeper-narrower", Agrees, 2},      // deeper helped, shallower hurt
		{"wide-stem", NotConclusive, 1},     // wider stem: no clear effect
		{"kernel-3x3", NotConclusive, 2},    // 5 hurt (agrees) but 7 helped (disagrees)
		{"smooth-activation", NotTested, 0}, // elu is neither SiLU nor GELU
		{"parametric-activation", NotTested, 0},
		{"two-groups", NotTested, 0},
		{"postponed-downsampling", NotTested, 0},
		{"se-0.25", NotTested, 0},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			f := findingOf(t, a, tt.id)
			assert.Equal(t, tt.outcome, f.Outcome, "%s: %s %v", f.ID, f.Summary, f.Evidence)
			assert.Len(t, f.Evidence, tt.evidence)
		})
	}
	assert.Equal(t, "no variant of the sweep changes what this finding is about (usually varied by group_width)", findingOf(t, a, "two-groups").Summary)
	assert.Equal(t, "the sweep's levels (activation=elu) do not bear on this finding", findingOf(t, a, "smooth-activation").Summary)
	assert.Contains(t, findingOf(t, a, "no-dense").Evidence[0], "dense_ratio=1: PGD +2.0")
	assert.Contains(t, findingOf(t, a, "no-dense").Evidence[0], "(n=3 vs 3); expected no gain, helps → disagrees")
}

func TestRatioFinding(t *testing.T) {
	mk := func(variant, factor, level string, ratio float64, robust ...float64) []results.Trial {
		var out []results.Trial
		for i, r := range robust {
			out = append(out, results.Trial{Sweep: "s", Variant: variant, Factor: factor, Level: level, Seed: int64(i),
				WidthDepthRatio: ratio, Status: results.StatusDone,
				Metrics: map[string]float64{results.CleanAcc: 0.8, results.PGDAcc: r}})
		}
		return out
	}
	base := mk("baseline", results.BaselineFactor, results.BaselineFactor, 10, 0.45, 0.46, 0.44)
	narrow := mk("depth_width=x2", sweep.FactorDepthWidth, "x2", 5, 0.40, 0.41, 0.39)
	wide := mk("depth_width=x0.5", sweep.FactorDepthWidth, "x0.5", 20, 0.50, 0.51, 0.49)
	kernel := mk("kernel=5", sweep.FactorKernel, "5", 30, 0.10, 0.11, 0.09) // not a depth variant: ignored

	tests := []struct {
		name    string
		trials  []results.Trial
		outcome string
		summary string
	}{
		{"in band better", append(append(append([]results.Trial{}, base...), narrow...), kernel...), Agrees,
			"in band minus outside: PGD +5.00 pts ["},
		{"in band worse", append(append([]results.Trial{}, base...), wide...), Disagrees, "in band minus outside: PGD -5.00 pts ["},
		{"mixed", append(append(append([]results.Trial{}, base...), narrow...), wide...), NotConclusive, "over 3 vs 6 trials"},
		{"nothing outside", append([]results.Trial{}, base...), NotTested, "no comparison: 1 variant(s) in the band [7.5, 13.5], 0 outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Analyze(tt.trials, Options{})
			require.NoError(t, err)
			f := findingOf(t, a, "width-depth-ratio")
			assert.Equal(t, tt.outcome, f.Outcome, f.Summary)
			assert.Contains(t, f.Summary, tt.summary)
		})
	}
}

func TestJudgeLevel(t *testing.T) {
	bounded := &Interval{Low: -0.03, High: 0.008}  // gains above 1 pt ruled out
	unbounded := &Interval{Low: -0.08, High: 0.12} // an underpowered "no clear effect"
	below := &Interval{Low: -0.09, High: -0.02}
	tests := []struct {
		d       direction
		verdict string
		ci      *Interval
		want    string
	}{
		{expectUp, Helps, nil, Agrees},
		{expectUp, Hurts, nil, Disagrees},
		{expectUp, NoClearEffect, unbounded, NotConclusive},
		{expectDown, Hurts, nil, Agrees},
		{expectDown, Helps, nil, Disagrees},
		{expectNoGain, NoClearEffect, bounded, Agrees},
		{expectNoGain, NoClearEffect, unbounded, NotConclusive},
		{expectNoGain, NoClearEffect, nil, NotConclusive},
		{expectNoGain, Hurts, below, Agrees},
		{expectNoGain, Helps, nil, Disagrees},
		{expectNoGain, Inconclusive, bounded, NotConclusive},
		{expectUp, Inconclusive, nil, NotConclusive},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, judgeLevel(tt.d, tt.verdict, tt.ci), "%s, %s, %v", tt.d, tt.verdict, tt.ci)
	}
}

// TestFindingPredictions is the table of every finding over pairs of
// specs: what it predicts for a variant (level) against the network it
// is compared with (base), judged from the specs alone.
func TestFindingPredictions(t *testing.T) {
	get := func(name string) arch.Spec {
		s, err := arch.Get(name)
		require.NoError(t, err)
		return s.WithDefaults()
	}
	r50, robarchS, micro := get("resnet50"), get("robarch-s"), get("micro")
	budget, err := arch.Params(r50)
	require.NoError(t, err)
	microBudget, err := arch.Params(micro)
	require.NoError(t, err)
	// edit returns a copy of s changed by f and refitted to the budget,
	// as the sweep planner does.
	edit := func(s arch.Spec, f func(*arch.Spec)) arch.Spec {
		c := s.Clone()
		f(&c)
		b := budget
		if s.Name == micro.Name {
			b = microBudget
		}
		fitted, _, err := arch.Fit(c, b, arch.FitOptions{Quantum: 8, Tolerance: 0.03})
		require.NoError(t, err)
		return fitted.WithDefaults()
	}
	act := func(a ...string) func(*arch.Spec) {
		return func(s *arch.Spec) { s.Block.Activations = a }
	}
	norms := func(n ...string) func(*arch.Spec) {
		return func(s *arch.Spec) { s.Block.Norms = n }
	}
	depths := func(d ...int) func(*arch.Spec) { return func(s *arch.Spec) { s.SetDepths(d...) } }
	groups := func(g int) func(*arch.Spec) {
		return func(s *arch.Spec) {
			for i, st := range s.Stages {
				s.Stages[i].GroupWidth = arch.BottleneckWidth(st.Width, st.BottleneckMultiplier) / g
			}
		}
	}
	postponed := func(s *arch.Spec) { s.Stem.MaxPool = false; s.Stages[0].Stride *= 2 }
	withRecipe := func(s *arch.Spec) { require.NoError(t, sweep.PaperRecipe(s)) }

	tests := []struct {
		finding     string
		name        string
		base, level arch.Spec
		want        direction
	}{
		// 1: deeper and narrower, whichever factor made it.
		{"deeper-narrower", "x1.5 depth, refitted", r50, edit(r50, depths(5, 6, 9, 5)), expectUp},
		{"deeper-narrower", "shallower, refitted", r50, edit(r50, depths(2, 2, 3, 2)), expectDown},
		// regression (issue 34): stage_depths=1,1,1 on micro is shallower
		// and wider at the same budget, so deeper-narrower bears on it.
		{"deeper-narrower", "stage_depths 1,1,1 on micro", micro, edit(micro, depths(1, 1, 1)), expectDown},
		{"deeper-narrower", "same depth, other kernel", r50, edit(r50, func(s *arch.Spec) { s.SetKernel(5) }), unrelated},
		{"deeper-narrower", "deeper without refit (wider budget)", r50, func() arch.Spec { c := r50.Clone(); c.SetDepths(4, 5, 7, 3); return c }(), unrelated},
		// 3: stage-3-heavy is a property of a depth list.
		{"stage-depths", "to 3,4,12,1", r50, edit(r50, depths(3, 4, 12, 1)), expectUp},
		{"stage-depths", "RobArch-S to ResNet's 3,4,6,3", robarchS, edit(robarchS, depths(3, 4, 6, 3)), expectDown},
		// regression (issue 34): 1,1,1 is not stage-3-heavy, nor is 3,3,3.
		{"stage-depths", "micro 3,3,3 to 1,1,1", micro, edit(micro, depths(1, 1, 1)), unrelated},
		{"stage-depths", "equal depths", r50, edit(r50, depths(4, 4, 4, 4)), unrelated},
		// 4
		{"two-groups", "groups:2", r50, edit(r50, groups(2)), expectUp},
		{"two-groups", "groups:4", r50, edit(r50, groups(4)), unrelated},
		{"two-groups", "RobArch-S to one group", robarchS, edit(robarchS, groups(1)), expectDown},
		// 5
		{"wide-stem", "96", r50, edit(r50, func(s *arch.Spec) { s.Stem.Width = 96 }), expectUp},
		{"wide-stem", "32", r50, edit(r50, func(s *arch.Spec) { s.Stem.Width = 32 }), expectDown},
		{"wide-stem", "patchify of the same width", r50, edit(r50, func(s *arch.Spec) { s.Stem = arch.Stem{Kind: arch.StemPatch, Width: 96, Kernel: 4} }), unrelated},
		// 6
		{"postponed-downsampling", "max-pool to stage 1 stride", r50, edit(r50, postponed), expectUp},
		{"postponed-downsampling", "stride 1 in the last stage (less in total)", r50, edit(r50, func(s *arch.Spec) { s.Stages[3].Stride = 1 }), unrelated},
		{"postponed-downsampling", "RobArch-S with the max-pool back", robarchS, edit(robarchS, func(s *arch.Spec) { s.Stem.MaxPool = true; s.Stages[0].Stride = 1 }), expectDown},
		{"postponed-downsampling", "earlier: max-pool back", func() arch.Spec { c := r50.Clone(); postponed(&c); return c }(), r50, expectDown},
		// 7
		{"conv-stem", "patchify", r50, edit(r50, func(s *arch.Spec) { s.Stem = arch.Stem{Kind: arch.StemPatch, Width: 64, Kernel: 4} }), expectDown},
		{"conv-stem", "conv stem, other width", r50, edit(r50, func(s *arch.Spec) { s.Stem.Width = 96 }), unrelated},
		// 8, 9
		{"kernel-3x3", "5", r50, edit(r50, func(s *arch.Spec) { s.SetKernel(5) }), expectNoGain},
		{"kernel-3x3", "back to 3", edit(r50, func(s *arch.Spec) { s.SetKernel(5) }), r50, expectUp},
		{"no-dilation", "2", r50, edit(r50, func(s *arch.Spec) {
			for i := range s.Stages {
				s.Stages[i].Dilation = 2
			}
		}), expectNoGain},
		{"no-dilation", "kernel only", r50, edit(r50, func(s *arch.Spec) { s.SetKernel(5) }), unrelated},
		// 10, 11
		{"smooth-activation", "silu", r50, edit(r50, act("silu", "silu", "silu")), expectUp},
		{"smooth-activation", "gelu and silu", r50, edit(r50, act("gelu", "silu", "gelu")), expectUp},
		{"smooth-activation", "partly relu", r50, edit(r50, act("relu", "silu", "silu")), unrelated},
		{"smooth-activation", "elu", r50, edit(r50, act("elu", "elu", "elu")), unrelated},
		{"smooth-activation", "back to relu", robarchS, edit(robarchS, act("relu", "relu", "relu")), expectDown},
		{"parametric-activation", "prelu vs relu", r50, edit(r50, act("prelu", "prelu", "prelu")), expectNoGain},
		{"parametric-activation", "psilu vs silu", robarchS, edit(robarchS, act("psilu", "psilu", "psilu")), expectNoGain},
		{"parametric-activation", "pssilu at one position", robarchS, edit(robarchS, act("silu", "pssilu", "silu")), expectNoGain},
		{"parametric-activation", "psilu vs relu (not its counterpart)", r50, edit(r50, act("psilu", "psilu", "psilu")), unrelated},
		{"parametric-activation", "silu vs relu", r50, edit(r50, act("silu", "silu", "silu")), unrelated},
		// 12
		{"se-0.25", "0.25", r50, edit(r50, func(s *arch.Spec) { s.Block.SERatio = 0.25 }), expectUp},
		{"se-0.25", "0.0625", r50, edit(r50, func(s *arch.Spec) { s.Block.SERatio = 0.0625 }), unrelated},
		{"se-0.25", "off from 0.25", robarchS, edit(robarchS, func(s *arch.Spec) { s.Block.SERatio = 0 }), expectDown},
		// 13, 14
		{"fewer-norms", "first norm off", r50, edit(r50, norms("identity", "batchnorm", "batchnorm")), expectUp},
		{"fewer-norms", "back to three", robarchS, edit(robarchS, norms("batchnorm", "batchnorm", "batchnorm")), expectDown},
		{"fewer-norms", "group norm everywhere", r50, edit(r50, norms("groupnorm", "groupnorm", "groupnorm")), unrelated},
		{"fewer-norms", "shortcut norm off (guideline 18's)", r50, edit(r50, func(s *arch.Spec) { s.Block.ShortcutNorm = arch.Identity }), unrelated},
		{"norm-type", "group norm everywhere", r50, edit(r50, norms("groupnorm", "groupnorm", "groupnorm")), expectNoGain},
		{"norm-type", "group norm at one position", r50, edit(r50, norms("batchnorm", "groupnorm", "batchnorm")), expectNoGain},
		{"norm-type", "first norm off", r50, edit(r50, norms("identity", "batchnorm", "batchnorm")), unrelated},
		// 15
		{"bottleneck-0.25", "0.5", r50, edit(r50, func(s *arch.Spec) {
			for i := range s.Stages {
				s.Stages[i].BottleneckMultiplier = 0.5
			}
		}), expectNoGain},
		// 16, 17
		{"no-preact", "pre-activation", r50, edit(r50, func(s *arch.Spec) { s.Block.Order = arch.PreAct }), expectNoGain},
		{"no-dense", "dense 1", r50, edit(r50, func(s *arch.Spec) { s.Block.DenseRatio = 1 }), expectNoGain},
		{"no-dense", "dense 1 with two-block stages (a no-op)", edit(r50, depths(2, 2, 2, 2)), edit(r50, func(s *arch.Spec) { s.SetDepths(2, 2, 2, 2); s.Block.DenseRatio = 1 }), unrelated},
		// 18
		{"shortcut-norm-stem-kernel", "shortcut norm off", r50, edit(r50, func(s *arch.Spec) { s.Block.ShortcutNorm = arch.Identity }), expectNoGain},
		{"shortcut-norm-stem-kernel", "stem kernel 3", r50, edit(r50, func(s *arch.Spec) { s.Stem.Kernel = 3 }), expectNoGain},
		{"shortcut-norm-stem-kernel", "stem width only", r50, edit(r50, func(s *arch.Spec) { s.Stem.Width = 96 }), unrelated},
	}
	findings := map[string]Finding{}
	for _, f := range Findings() {
		findings[f.ID] = f
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.finding+"/"+tt.name, func(t *testing.T) {
			f, ok := findings[tt.finding]
			require.True(t, ok, "no finding %s", tt.finding)
			require.NotNil(t, f.predict)
			assert.Equal(t, tt.want, f.predict(tt.base, tt.level))
			tested[tt.finding] = true
		})
	}
	for _, f := range Findings() {
		if f.predict != nil {
			assert.True(t, tested[f.ID], "finding %s has spec-pair cases", f.ID)
		}
	}

	// The paper's recipe applied to ResNet-50 is RobArch-S's depths and
	// bears on most adopted guidelines at once (not deeper-narrower: like
	// RobArch-S against ResNet-50 it is deeper and wider, the grouped
	// convolutions and the one-block last stage pay for it): findings leave the spec
	// factor's variants out (specPairs), but the recipe itself is right.
	rec := edit(r50, withRecipe)
	assert.Equal(t, []int{5, 8, 13, 1}, rec.Depths())
	for _, id := range []string{"stage-depths", "two-groups", "wide-stem", "postponed-downsampling", "smooth-activation", "se-0.25", "fewer-norms"} {
		assert.NotEqual(t, unrelated, findings[id].predict(r50, rec), id)
	}
}

func TestEighteenGuidelines(t *testing.T) {
	fs := Findings()
	require.Len(t, fs, 18)
	for i, f := range fs {
		assert.Equal(t, i+1, f.Guideline, f.ID)
		assert.NotEmpty(t, f.Source, f.ID)
		assert.NotEmpty(t, f.Claim, f.ID)
		assert.True(t, (f.predict == nil) != (f.custom == nil), "%s: one way of judging", f.ID)
	}
}

// regression (issue 34): the ratio band is a basic-block WideResNet
// figure; a sweep of bottleneck networks gets the ratios, no verdict.
func TestRatioFindingOutOfScope(t *testing.T) {
	trials := synthSweep(t, 3, false,
		level{factor: sweep.FactorDepthWidth, level: "deeper-narrower", robust: 0.03,
			edit: func(s *arch.Spec) { s.SetDepths(5, 5, 5) }})
	r50, err := arch.Get("resnet50")
	require.NoError(t, err)
	js, err := json.Marshal(r50.WithDefaults())
	require.NoError(t, err)
	for i := range trials {
		trials[i].Spec = js // a bottleneck baseline (and variant)
	}
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	f := findingOf(t, a, "width-depth-ratio")
	assert.Equal(t, NotTested, f.Outcome)
	assert.Contains(t, f.Summary, "basic-block WideResNets on CIFAR-10")
	assert.Contains(t, f.Evidence[0]+f.Evidence[1], "ratio")
}

// regression (issue 34): make run's study varies stage_depths=1,1,1, a
// shallower and wider net at the same budget; the report must read it
// as the deeper-narrower guideline, not as a stage-3-heavy level.
func TestMakeRunStudyFindings(t *testing.T) {
	trials := synthSweep(t, 3, false,
		level{factor: sweep.FactorStageDepths, level: "1,1,1", robust: -0.03,
			edit: func(s *arch.Spec) { s.SetDepths(1, 1, 1) }},
		level{factor: sweep.FactorStemType, level: "patchify:4", robust: -0.045,
			edit: func(s *arch.Spec) { s.Stem = arch.Stem{Kind: arch.StemPatch, Width: s.Stem.Width, Kernel: 4} }})
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	dn := findingOf(t, a, "deeper-narrower")
	assert.Equal(t, Agrees, dn.Outcome, dn.Evidence)
	require.Len(t, dn.Evidence, 1)
	assert.Contains(t, dn.Evidence[0], "stage_depths=1,1,1")
	assert.Contains(t, dn.Evidence[0], "expected to hurt, hurts → agrees")
	assert.Equal(t, NotTested, findingOf(t, a, "stage-depths").Outcome)
	assert.Equal(t, Agrees, findingOf(t, a, "conv-stem").Outcome)
	// patchify:4 also downsamples more in the stem, but stems of
	// different kinds are the conv-stem finding's alone.
	assert.Equal(t, NotTested, findingOf(t, a, "postponed-downsampling").Outcome)
}

// The spec factor's levels are the guidelines combined: reported on
// their own, never as evidence for one guideline.
func TestCombinedSpecIsReportedApart(t *testing.T) {
	trials := synthSweep(t, 3, false,
		level{factor: sweep.FactorSpec, level: "mine", robust: 0.04,
			edit: func(s *arch.Spec) { s.Block.Activations = []string{"silu", "silu", "silu"}; s.SetDepths(2, 6, 1) }})
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	require.Len(t, a.Combined, 1)
	assert.Contains(t, a.Combined[0], "spec=mine: PGD +4.0")
	assert.Contains(t, a.Combined[0], Helps)
	assert.Equal(t, NotTested, findingOf(t, a, "smooth-activation").Outcome)
	assert.Equal(t, NotTested, findingOf(t, a, "stage-depths").Outcome)
}
