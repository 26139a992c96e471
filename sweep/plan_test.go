package sweep

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
)

func TestShippedSweepsLoad(t *testing.T) {
	names := ShippedSweeps()
	require.Contains(t, names, "fashion-mnist-micro")
	require.Contains(t, names, "robarch-imagenet-26m")
	for _, n := range names {
		f, err := LoadFile(n)
		require.NoError(t, err, n)
		assert.Equal(t, n, f.Name)
	}
}

func TestImageNetPlanFitsBudget(t *testing.T) {
	f, err := LoadFile("robarch-imagenet-26m")
	require.NoError(t, err)
	p, err := MakePlan(f)
	require.NoError(t, err)
	assert.Equal(t, int64(26_000_000), p.Budget)

	levels := 0
	for _, fa := range f.Factors {
		levels += len(fa.Levels)
	}
	require.Len(t, p.Variants, levels+1, "baseline plus one variant per level")
	assert.Equal(t, results.BaselineFactor, p.Variants[0].Factor)

	i := 1
	for _, fa := range f.Factors {
		for _, level := range fa.Levels {
			v := p.Variants[i]
			i++
			assert.Equal(t, fa.Name, v.Factor)
			assert.Equal(t, level, v.Level)
			if !v.Feasible {
				assert.NotEmpty(t, v.Reason, "infeasible %s has a reason", v.Name)
				continue
			}
			n, err := arch.Params(v.Spec)
			require.NoError(t, err)
			assert.Equal(t, n, v.Params, v.Name)
			assert.LessOrEqual(t, math.Abs(float64(n)-26e6), 0.02*26e6, "%s has %d params", v.Name, n)
			assert.Positive(t, v.MACs)
		}
	}
	assert.GreaterOrEqual(t, len(p.Feasible()), levels-2, "nearly every level is reachable at 26M")
}

func TestApplyLevel(t *testing.T) {
	base, err := arch.Get("resnet50")
	require.NoError(t, err)
	for _, tc := range []struct {
		factor, level string
		check         func(t *testing.T, s arch.Spec)
		wantErr       string
	}{
		{FactorKernel, "5", func(t *testing.T, s arch.Spec) { assert.Equal(t, 5, s.Stages[2].Kernel) }, ""},
		{FactorActivation, "silu", func(t *testing.T, s arch.Spec) {
			assert.Equal(t, []string{"silu", "silu", "silu"}, s.Block.Activations)
		}, ""},
		{FactorActivation, "swish", nil, "want one of"},
		{FactorNorm, "identity,batchnorm,batchnorm", func(t *testing.T, s arch.Spec) { assert.Equal(t, "identity", s.Block.Norms[0]) }, ""},
		{FactorDownsample, "postponed", func(t *testing.T, s arch.Spec) {
			assert.False(t, s.Stem.MaxPool)
			assert.Equal(t, 2, s.Stages[0].Stride)
		}, ""},
		{FactorStageDepths, "3,4,6", nil, "want 4 depths"},
		{FactorGroupWidth, "groups:2", func(t *testing.T, s arch.Spec) { assert.Equal(t, 32, s.Stages[0].GroupWidth) }, ""},
		{FactorStemType, "patchify", func(t *testing.T, s arch.Spec) {
			assert.Equal(t, arch.StemPatch, s.Stem.Kind)
			assert.Equal(t, 4, s.Stem.Kernel)
		}, ""},
		{FactorPreact, "true", func(t *testing.T, s arch.Spec) { assert.Equal(t, arch.PreAct, s.Block.Order) }, ""},
		{FactorDepthWidth, "deeper-narrower", func(t *testing.T, s arch.Spec) { assert.Equal(t, []int{5, 6, 9, 5}, s.Depths()) }, ""},
		{FactorDilation, "2", func(t *testing.T, s arch.Spec) {
			for _, st := range s.Stages {
				assert.Equal(t, 2, st.Dilation)
			}
		}, ""},
		{FactorDilation, "0", nil, "want a positive integer dilation"},
		{FactorStemKernel, "3", func(t *testing.T, s arch.Spec) { assert.Equal(t, 3, s.Stem.Kernel) }, ""},
		{FactorStemKernel, "4", nil, "want an odd positive kernel size"},
		{FactorSpec, "robarch-s", func(t *testing.T, s arch.Spec) {
			assert.Equal(t, []int{5, 8, 13, 1}, s.Depths())
			assert.Equal(t, base.Input, s.Input, "the baseline's input is kept")
		}, ""},
		{FactorSpec, RecipeLevel, func(t *testing.T, s arch.Spec) {
			// RobArch-S's changes to ResNet-50, from the paper's code.
			assert.Equal(t, []int{5, 8, 13, 1}, s.Depths())
			assert.Equal(t, 96, s.Stem.Width)
			assert.False(t, s.Stem.MaxPool)
			assert.Equal(t, []int{2, 2, 2, 2}, []int{s.Stages[0].Stride, s.Stages[1].Stride, s.Stages[2].Stride, s.Stages[3].Stride})
			assert.Equal(t, []string{"silu", "silu", "silu"}, s.Block.Activations)
			assert.Equal(t, []string{"identity", "batchnorm", "batchnorm"}, s.Block.Norms)
			assert.Equal(t, 0.25, s.Block.SERatio)
			assert.Equal(t, 32, s.Stages[0].GroupWidth, "two groups of the 64-wide bottleneck")
		}, ""},
		{FactorSpec, "no-such-preset", nil, "neither a preset"},
		{"colour", "red", nil, "want one of"},
	} {
		t.Run(tc.factor+"="+tc.level, func(t *testing.T) {
			s, err := ApplyLevel(base, tc.factor, tc.level)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, s)
			assert.NoError(t, s.Validate())
		})
	}
}

func TestApportion(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{26, []int{5, 8, 13}},  // RobArch-S
		{36, []int{7, 11, 18}}, // RobArch-M: 7,11,18
		{13, []int{2, 4, 7}},   // 2.5, 4, 6.5: the tie goes to the deeper stage
		{3, []int{1, 1, 1}},
	} {
		got := apportion(tc.n, recipeShares)
		assert.Equal(t, tc.want, got, "n=%d", tc.n)
		assert.Equal(t, tc.n, sumInts(got))
	}
}

// A study's own recommended.yaml is a spec level like any other: the
// file's network with the baseline's input and classes.
func TestSpecLevelFromFile(t *testing.T) {
	base, err := arch.Get("resnet-fmnist")
	require.NoError(t, err)
	rec := base.WithDefaults()
	rec.Name = "mine"
	rec.Block.Activations = []string{"silu", "silu", "silu"}
	rec.Input.Mean, rec.Input.Std = nil, nil
	data, err := yaml.Marshal(rec)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "recommended.yaml")
	require.NoError(t, os.WriteFile(file, data, 0o644))
	s, err := ApplyLevel(base, FactorSpec, file)
	require.NoError(t, err)
	assert.Equal(t, []string{"silu", "silu", "silu"}, s.Block.Activations)
	assert.Equal(t, base.WithDefaults().Input, s.Input, "the baseline's input and normalisation are kept")
}

func TestPaperRecipeRefusesOtherShapes(t *testing.T) {
	micro, err := arch.Get("micro")
	require.NoError(t, err)
	_, err = ApplyLevel(micro, FactorSpec, RecipeLevel)
	assert.ErrorContains(t, err, "four stages; the baseline has 3")
}

func TestFileValidationNamesFields(t *testing.T) {
	f := File{Name: "x", Baseline: "micro", Design: "grid", Tolerance: 0.02,
		Factors: []Factor{{Name: "colour", Levels: []string{"red"}}}, Dataset: DatasetConfig{Name: "synthetic"}}
	err := f.WithDefaults().Validate()
	require.Error(t, err)
	assert.ErrorContains(t, err, "design: \"grid\", want ofat or random")
	assert.ErrorContains(t, err, "factors[0].name: \"colour\"")
	assert.ErrorContains(t, err, "eval.eps")
}

func TestRandomDesign(t *testing.T) {
	f, err := LoadFile("fashion-mnist-micro")
	require.NoError(t, err)
	f.Design, f.Samples = Random, 5
	p, err := MakePlan(f)
	require.NoError(t, err)
	require.Len(t, p.Variants, 6)
	for _, v := range p.Variants[1:] {
		assert.Equal(t, string(Random), v.Factor)
		assert.Contains(t, v.Level, "activation=")
	}
	again, err := MakePlan(f)
	require.NoError(t, err)
	assert.Equal(t, p.Variants, again.Variants, "same seed, same sample")
}

// Load's replacements are how flags reach a sweep file; environment
// variables named after sweep-file keys are not read (the command's own
// ROBARCH_SWEEP_* variables are, through its flags), so a variable meant
// for `robarch train` cannot change a sweep.
func TestLoadReplacesKeysAndIgnoresKeyNamedVariables(t *testing.T) {
	t.Setenv("ROBARCH_TRAIN_EPOCHS", "9")
	t.Setenv("ROBARCH_BUDGET", "1M")
	shipped, err := LoadFile("fashion-mnist-micro")
	require.NoError(t, err)
	f, err := Load("fashion-mnist-micro", map[string]any{
		"train.epochs": "7", "budget": "300K", "eval.attacks": []string{"pgd10", "aa"},
		"train.eps": "8/255", "seeds": []string{"4", "5"}, "train.precision": "fp32",
	})
	require.NoError(t, err)
	assert.Equal(t, 7, f.Train.Epochs)
	assert.Equal(t, Budget(300_000), f.Budget, "parsed once, at load")
	assert.Equal(t, []string{"pgd10", "aa"}, f.Eval.Attacks)
	assert.Equal(t, 8.0/255, f.Train.Eps, "a radius given as text is parsed exactly")
	assert.Equal(t, study.Seeds{List: []int64{4, 5}}, f.Seeds, "a seed list replaces the file's policy")
	assert.Equal(t, shipped.Dataset, f.Dataset, "keys not replaced keep the file's value")
	assert.NotEqual(t, 9, shipped.Train.Epochs)
	assert.NotEqual(t, Budget(1_000_000), shipped.Budget)

	_, err = Load("fashion-mnist-micro", map[string]any{"train.epochs": "many"})
	assert.ErrorContains(t, err, "epochs")
}

// The WRN depth/width study plans at the baseline's CIFAR budget, and every
// variant stays a spec RobustBench's DM layout can name.
func TestWRNDepthWidthPlanFitsBudget(t *testing.T) {
	f, err := LoadFile("cifar10-wrn-depth-width")
	require.NoError(t, err)
	p, err := MakePlan(f)
	require.NoError(t, err)
	base, err := arch.Get("rb-dm-wrn-28-10-silu")
	require.NoError(t, err)
	budget, err := arch.Params(base)
	require.NoError(t, err)
	assert.Equal(t, budget, p.Budget)
	depths := map[string][]int{}
	for _, v := range p.Variants {
		if !v.Feasible {
			t.Errorf("%s is infeasible: %s", v.Name, v.Reason)
			continue
		}
		require.NoError(t, arch.Check(v.Spec), v.Name)
		assert.Equal(t, arch.NamingRBDM, v.Spec.Naming, v.Name)
		assert.LessOrEqual(t, math.Abs(float64(v.Params-budget)), 0.02*float64(budget), "%s has %d params", v.Name, v.Params)
		depths[v.Level] = v.Spec.Depths()
	}
	assert.Equal(t, []int{6, 5, 1}, depths["6,5,1"])
	assert.Equal(t, []int{6, 6, 6}, depths["deeper-narrower"], "x1.5 of 4 blocks per stage")
}

// A sweep file is checked whole at load: attack names, the budget, keys
// the sweep would overwrite, training keys the method or schedule would
// not read; --set reaches any key and is checked the same.
func TestLoadRefusesWhatItCannotHonour(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]any
		want string
	}{
		{"unknown attack", map[string]any{"eval.attacks": []string{"pgd20", "cw"}}, "eval.attacks[1]: attack \"cw\": want one of"},
		{"bad pgd", map[string]any{"eval.attacks": []string{"pgd0"}}, "eval.attacks[0]: attack \"pgd0\": want pgdK with K >= 1"},
		{"bad check attack", map[string]any{"eval.check.attacks": []string{"aaa"}}, "eval.check.attacks[0]"},
		{"budget", map[string]any{"budget": "lots"}, "budget: budget \"lots\": want a positive count like 26M"},
		{"train.seed", map[string]any{"train.seed": 3}, "train.seed: a sweep sets it for every trial from seeds"},
		{"train.eval_eps", map[string]any{"train.eval_eps": "8/255"}, "train.eval_eps: a sweep sets it for every trial from eval.eps"},
		{"train.final_size", map[string]any{"train.final_size": 100}, "train.final_size: a sweep sets it for every trial from eval.size"},
		{"train.final_steps", map[string]any{"train.final_steps": 50}, "train.final_steps: a sweep sets it for every trial from eval.attacks"},
		{"mistyped set key", map[string]any{"train.learning_rate": 0.1}, "train.learning_rate: unknown key"},
		{"steps under fgsm-rs", map[string]any{"train.steps": 10}, "train.steps: read only by method pgd or trades; method fgsm-rs does not read it"},
		{"beta under pgd", map[string]any{"train.method": "pgd", "train.beta": 6}, "train.beta: read only by method trades"},
		{"milestones under one-cycle", map[string]any{"train.milestones": []float64{1}}, "train.milestones: read only by schedule step; this recipe's schedule is onecycle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("fashion-mnist-micro", tc.set)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	f, err := Load("fashion-mnist-micro", map[string]any{"eval.attacks": []string{"pgd10", "pgd20-cw", "AutoAttack"}})
	require.NoError(t, err, "pgdK-cw and any spelling robarch eval takes are sweep attacks too")
	assert.Equal(t, "aa_acc", f.RobustMetric(), "autoattack is aa")
}

func TestParseSet(t *testing.T) {
	set, err := ParseSet([]string{"train.lr=0.05", "eval.attacks=[pgd10, aa]", "seeds={start: 3, add: 2, max: 5}", "train.eps=8/255"})
	require.NoError(t, err)
	f, err := Load("fashion-mnist-micro", set)
	require.NoError(t, err)
	assert.Equal(t, 0.05, f.Train.LR)
	assert.Equal(t, []string{"pgd10", "aa"}, f.Eval.Attacks)
	assert.Equal(t, 3, f.Seeds.Start)
	assert.Equal(t, 8.0/255, f.Train.Eps)
	for _, bad := range []struct{ in, want string }{
		{"train.lr", "want key=value"},
		{"=3", "want key=value"},
		{"seeds=[0, 1", "--set seeds: value"},
	} {
		_, err := ParseSet([]string{bad.in})
		assert.ErrorContains(t, err, bad.want, bad.in)
	}
	_, err = ParseSet([]string{"train.lr=0.1", "train.lr=0.2"})
	assert.ErrorContains(t, err, "given twice")
}

// A mapping and a key inside it given together: the mapping is set first
// whatever order the assignments come in.
func TestSetMappingThenItsKey(t *testing.T) {
	for range 20 { // map order varies between runs
		set, err := ParseSet([]string{"seeds.offset=5", "seeds={start: 3, add: 1, max: 4}"})
		require.NoError(t, err)
		f, err := Load("fashion-mnist-micro", set)
		require.NoError(t, err)
		assert.Equal(t, study.Seeds{Start: 3, Add: 1, Max: 4, Offset: 5}, f.Seeds)
	}
}

// The budget is a count from load on; configs stored with it as text
// (before) still decode.
func TestBudgetIsACount(t *testing.T) {
	for _, text := range []string{"300K", "300000", "0.3M"} {
		set, err := ParseSet([]string{"budget=" + text})
		require.NoError(t, err)
		f, err := Load("fashion-mnist-micro", set)
		require.NoError(t, err, text)
		assert.Equal(t, Budget(300_000), f.Budget, text)
		back, err := ParseTrialConfig(json.RawMessage(`{"sweep": ` + string(f.JSON()) + `}`))
		require.NoError(t, err)
		assert.Equal(t, f.Budget, back.Sweep.Budget)
	}
	old, err := ParseTrialConfig(json.RawMessage(`{"sweep": {"name": "x", "budget": "26M"}}`))
	require.NoError(t, err)
	assert.Equal(t, Budget(26_000_000), old.Sweep.Budget)
	_, err = Load("fashion-mnist-micro", map[string]any{"budget": -5})
	assert.ErrorContains(t, err, "budget")
}
