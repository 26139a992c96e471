package guidelines

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/guidelines/paper"
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
	require.Len(t, a.Findings, len(paper.All()))

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
		d       paper.Direction
		verdict string
		ci      *Interval
		want    string
	}{
		{paper.ExpectUp, Helps, nil, Agrees},
		{paper.ExpectUp, Hurts, nil, Disagrees},
		{paper.ExpectUp, NoClearEffect, unbounded, NotConclusive},
		{paper.ExpectDown, Hurts, nil, Agrees},
		{paper.ExpectDown, Helps, nil, Disagrees},
		{paper.ExpectNoGain, NoClearEffect, bounded, Agrees},
		{paper.ExpectNoGain, NoClearEffect, unbounded, NotConclusive},
		{paper.ExpectNoGain, NoClearEffect, nil, NotConclusive},
		{paper.ExpectNoGain, Hurts, below, Agrees},
		{paper.ExpectNoGain, Helps, nil, Disagrees},
		{paper.ExpectNoGain, Inconclusive, bounded, NotConclusive},
		{paper.ExpectUp, Inconclusive, nil, NotConclusive},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, judgeLevel(tt.d, tt.verdict, tt.ci), "%s, %s, %v", tt.d, tt.verdict, tt.ci)
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
