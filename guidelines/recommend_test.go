package guidelines

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/sweep"
)

func TestRecommendAppliesHelpfulLevels(t *testing.T) {
	deeper3 := deeper
	deeper3.seeds = 3
	stage := level{factor: sweep.FactorStageDepths, level: "2,5,1", robust: 0.02,
		edit: func(s *arch.Spec) { s.SetDepths(2, 5, 1) }}
	dense := level{factor: sweep.FactorDenseRatio, level: "1", robust: 0.01,
		edit: func(s *arch.Spec) { s.Block.DenseRatio = 1 }}
	trials := synthSweep(t, 3, false, silu, kernel5, se25, deeper3, stage, dense)
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)

	rec, err := Recommend(a, nil, RecommendOptions{})
	require.NoError(t, err)
	labels := appliedLabels(rec.Applied)
	assert.Equal(t, []string{"activation=silu", "depth_width=deeper-narrower", "dense_ratio=1"}, labels, "largest gain first")
	require.Len(t, rec.Skipped, 1)
	assert.Contains(t, rec.Skipped[0], "stage_depths=2,5,1: changes the same part of the network as depth_width=deeper-narrower")

	spec, err := arch.Parse([]byte(rec.YAML), "yaml")
	require.NoError(t, err, "the recommendation is a valid spec")
	assert.Equal(t, "synth-recommended", spec.Name)
	assert.Equal(t, []string{"silu", "silu", "silu"}, spec.Block.Activations)
	assert.Equal(t, []int{5, 5, 5}, spec.Depths(), "depths of the deeper-narrower variant")
	assert.Equal(t, 1, spec.Block.DenseRatio)
	assert.Equal(t, 3, spec.Stages[0].Kernel, "kernel=5 hurt")
	assert.Zero(t, spec.Block.SERatio, "SE had no clear effect")

	n, err := arch.Params(spec)
	require.NoError(t, err)
	assert.Equal(t, n, rec.Params)
	assert.LessOrEqual(t, math.Abs(float64(n-a.Budget)), 0.02*float64(a.Budget), "refitted to the budget")
	assert.Equal(t, arch.WidthDepthRatio(spec), rec.WidthDepthRatio)
	for _, w := range spec.Widths() {
		assert.Zero(t, w%2, "widths are multiples of the sweep's quantum 2")
	}
}

func TestRecommendNothingHelps(t *testing.T) {
	trials := synthSweep(t, 3, false, kernel5, se25)
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	rec, err := Recommend(a, nil, RecommendOptions{})
	require.NoError(t, err)
	assert.Empty(t, rec.Applied)
	assert.Contains(t, rec.YAML, "no factor helped robust accuracy")
	spec, err := arch.Parse([]byte(rec.YAML), "yaml")
	require.NoError(t, err)
	base, err := arch.Get("micro")
	require.NoError(t, err)
	assert.Equal(t, base.Stages, spec.Stages, "the baseline already fits its own budget")
}

func TestRecommendOptions(t *testing.T) {
	trials := synthSweep(t, 3, false, silu)
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	rec, err := Recommend(a, nil, RecommendOptions{Budget: 2 * a.Budget, Quantum: 8, Tolerance: 0.05})
	require.NoError(t, err)
	assert.Equal(t, 2*a.Budget, rec.Budget)
	assert.InDelta(t, float64(2*a.Budget), float64(rec.Params), 0.05*float64(2*a.Budget))
	spec, err := arch.Parse([]byte(rec.YAML), "yaml")
	require.NoError(t, err)
	for _, w := range spec.Widths() {
		assert.Zero(t, w%8)
	}

	// An explicit baseline spec replaces the stored one.
	other, err := arch.Get("micro")
	require.NoError(t, err)
	other.Stem.Width = 24
	js, err := json.Marshal(other)
	require.NoError(t, err)
	rec, err = Recommend(a, js, RecommendOptions{})
	require.NoError(t, err)
	assert.Contains(t, rec.YAML, "width: 24")

	_, err = Recommend(a, json.RawMessage(`{"stages": "many"}`), RecommendOptions{})
	assert.ErrorContains(t, err, "recommend: decode baseline spec")

	for i := range trials {
		trials[i].Spec = nil
	}
	a, err = Analyze(trials, Options{})
	require.NoError(t, err)
	_, err = Recommend(a, nil, RecommendOptions{})
	assert.ErrorContains(t, err, "the baseline trial has no spec")
}

func TestSweepFitSettings(t *testing.T) {
	tol, q, sd := sweepFitSettings(json.RawMessage(`{"sweep":{"tolerance":0.01,"quantum":4,"scale_depth":true},"variant":"x"}`))
	assert.Equal(t, 0.01, tol)
	assert.Equal(t, 4, q)
	assert.True(t, sd)
	tol, q, sd = sweepFitSettings(nil)
	assert.Zero(t, tol)
	assert.Zero(t, q)
	assert.False(t, sd)
}

func TestSetGroups(t *testing.T) {
	s, err := arch.Get("resnet50")
	require.NoError(t, err)
	require.NoError(t, setGroups(&s, []int{2, 2, 2, 2}, 8))
	require.NoError(t, arch.Check(s))
	assert.Equal(t, []int{2, 2, 2, 2}, sweep.GroupsOf(s))

	// A bottleneck not divisible by the groups moves the width to one that is.
	s.Stages[0].Width = 264 // bottleneck 66
	require.NoError(t, setGroups(&s, []int{4, 2, 2, 2}, 8))
	require.NoError(t, arch.Check(s))
	assert.Equal(t, 4, sweep.GroupsOf(s)[0])
	assert.Zero(t, s.Stages[0].Width%8)
	assert.InDelta(t, 264, s.Stages[0].Width, 16)

	require.NoError(t, setGroups(&s, []int{1, 1, 1, 1}, 8))
	for _, st := range s.Stages {
		assert.Zero(t, st.GroupWidth, "one group is group width 0")
	}
}

func TestRecommendGroupsFromDonor(t *testing.T) {
	// A bottleneck baseline where two groups help.
	base, err := arch.Get("resnet50")
	require.NoError(t, err)
	base.Input = arch.Input{Channels: 3, Height: 32, Width: 32}
	base.Classes = 10
	base.Stem = arch.Stem{Kind: arch.StemConv, Width: 16, Kernel: 3, Stride: 1}
	for i := range base.Stages {
		base.Stages[i].Width /= 4
		base.Stages[i].Depth = 1
	}
	budget, err := arch.Params(base)
	require.NoError(t, err)
	donor := base.Clone()
	require.NoError(t, setGroups(&donor, []int{2, 2, 2, 2}, 8))
	donor, _, err = arch.Fit(donor, budget, arch.FitOptions{})
	require.NoError(t, err)

	a := &Analysis{Sweep: "g", RobustMetric: "pgd_acc", Budget: budget,
		Baseline: &Group{Spec: mustJSON(t, base)},
		Groups:   []*Group{{Factor: sweep.FactorGroupWidth, Level: "groups:2", Spec: mustJSON(t, donor)}},
		Factors:  []FactorSummary{{Factor: sweep.FactorGroupWidth, Levels: []string{"groups:2"}, Best: "groups:2", BestEffect: 0.01, Verdict: Helps}},
		Effects:  []Effect{{Factor: sweep.FactorGroupWidth, Level: "groups:2", Estimates: []Estimate{{Metric: "pgd_acc", Effect: 0.01}}}},
	}
	a.Groups = append(a.Groups, a.Baseline)
	rec, err := Recommend(a, nil, RecommendOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{sweep.FactorGroupWidth + "=groups:2"}, appliedLabels(rec.Applied))
	spec, err := arch.Parse([]byte(rec.YAML), "yaml")
	require.NoError(t, err)
	assert.Equal(t, []int{2, 2, 2, 2}, sweep.GroupsOf(spec))
}

func mustJSON(t *testing.T, s arch.Spec) json.RawMessage {
	t.Helper()
	js, err := json.Marshal(s)
	require.NoError(t, err)
	return js
}

// appliedLabels are the "factor=level" labels of Recommendation.Applied
// lines ("factor=level (PGD +1.00 pts [...])").
func appliedLabels(applied []string) []string {
	out := make([]string, len(applied))
	for i, s := range applied {
		out[i], _, _ = strings.Cut(s, " (")
	}
	return out
}

// A helpful level of a factor package sweep does not define is skipped
// with the reason, not dropped silently; the others are still applied.
func TestRecommendSkipsUnknownFactorWithReason(t *testing.T) {
	a, err := Analyze(synthSweep(t, 3, false, silu), Options{})
	require.NoError(t, err)
	a.Factors = append(a.Factors, FactorSummary{Factor: "colour", Levels: []string{"blue"}, Best: "blue", BestEffect: 0.5, Verdict: Helps})
	rec, err := Recommend(a, nil, RecommendOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"colour=blue: robarch does not know how to apply this factor"}, rec.Skipped)
	assert.Equal(t, []string{"activation=silu"}, appliedLabels(rec.Applied))
}
