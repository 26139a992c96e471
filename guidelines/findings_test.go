package guidelines

import (
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
		level{factor: sweep.FactorStageDepths, level: "2,5,1", robust: 0.03,
			edit: func(s *arch.Spec) { s.SetDepths(2, 5, 1) }},
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
		{"stage-depths", Agrees, 1},         // 2,5,1 helped; 5,2,2 is unrelated (baseline 3,3,3 is not stage-3 heavy either)
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
	assert.Equal(t, "the sweep did not vary group_width", findingOf(t, a, "two-groups").Summary)
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
	tests := []struct {
		d       direction
		verdict string
		want    string
	}{
		{expectUp, Helps, Agrees},
		{expectUp, Hurts, Disagrees},
		{expectUp, NoClearEffect, NotConclusive},
		{expectDown, Hurts, Agrees},
		{expectDown, Helps, Disagrees},
		{expectNoGain, NoClearEffect, Agrees},
		{expectNoGain, Hurts, Agrees},
		{expectNoGain, Helps, Disagrees},
		{expectNoGain, Inconclusive, NotConclusive},
		{expectUp, Inconclusive, NotConclusive},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, judgeLevel(tt.d, tt.verdict), "%s, %s", tt.d, tt.verdict)
	}
}

func TestLevelExpectations(t *testing.T) {
	r50, err := arch.Get("resnet50")
	require.NoError(t, err)
	robarchS, err := arch.Get("robarch-s")
	require.NoError(t, err)
	tests := []struct {
		name   string
		expect func(string, *arch.Spec) direction
		level  string
		base   *arch.Spec
		want   direction
	}{
		{"deeper", expectDepthWidth, "deeper-narrower", &r50, expectUp},
		{"x1.5", expectDepthWidth, "x1.5", &r50, expectUp},
		{"x0.5", expectDepthWidth, "x0.5", &r50, expectDown},
		{"x1", expectDepthWidth, "x1", &r50, unrelated},
		{"garbage depth", expectDepthWidth, "tall", &r50, unrelated},
		{"stage 3 heavy", expectStageDepths, "3,4,12,1", &r50, expectUp},
		{"stage 3 heavy from heavy base", expectStageDepths, "3,4,12,1", &robarchS, unrelated},
		{"losing stage 3 weight", expectStageDepths, "3,4,6,3", &robarchS, expectDown},
		{"two groups", expectTwoGroups, "groups:2", &r50, expectUp},
		{"32 groups", expectTwoGroups, "groups:32", &r50, unrelated},
		{"group width giving two groups", expectTwoGroups, "32", &r50, unrelated}, // 64/32=2 in stage 1 only
		{"one group from two", expectTwoGroups, "groups:1", &robarchS, expectDown},
		{"wider stem", expectWideStem, "96", &r50, expectUp},
		{"narrower stem", expectWideStem, "32", &r50, expectDown},
		{"postponed", expectPostponed, "postponed", &r50, expectUp},
		{"strides", expectPostponed, "1,2,2,2", &r50, unrelated},
		{"patchify", expectConvStem, "patchify:4", &r50, expectDown},
		{"kernel 5", expectSmallKernel, "5", &r50, expectNoGain},
		{"kernel 3", expectSmallKernel, "3", &r50, unrelated},
		{"silu", expectSmoothActivation, "silu", &r50, expectUp},
		{"gelu per position", expectSmoothActivation, "gelu,silu,gelu", &r50, expectUp},
		{"mixed with relu", expectSmoothActivation, "relu,silu,silu", &r50, unrelated},
		{"silu from silu base", expectSmoothActivation, "gelu", &robarchS, unrelated},
		{"prelu", expectParametric, "prelu", &r50, expectNoGain},
		{"se 0.25", expectSE, "0.25", &r50, expectUp},
		{"se 0.0625", expectSE, "0.0625", &r50, unrelated},
		{"se off from 0.25", expectSE, "0", &robarchS, expectDown},
		{"first norm off", expectFewerNorms, "identity,batchnorm,batchnorm", &r50, expectUp},
		{"shortcut norm off", expectFewerNorms, "shortcut:identity", &r50, expectUp},
		{"groupnorm", expectFewerNorms, "groupnorm", &r50, unrelated},
		{"back to three norms", expectFewerNorms, "batchnorm", &robarchS, expectDown},
		{"preact", expectNoPreact, "true", &r50, expectNoGain},
		{"postact", expectNoPreact, "false", &r50, unrelated},
		{"dense", expectNoDense, "1", &r50, expectNoGain},
		{"no dense", expectNoDense, "0", &r50, unrelated},
		{"no baseline spec", expectWideStem, "96", nil, expectUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base *arch.Spec
			if tt.base != nil {
				b := tt.base.WithDefaults()
				base = &b
			}
			assert.Equal(t, tt.want, tt.expect(tt.level, base))
		})
	}
}
