package sweep

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
)

func TestSampleLevelRoundTrip(t *testing.T) {
	levels := []FactorLevel{{FactorKernel, "5"}, {FactorActivation, "relu,silu,silu"}, {FactorNorm, "shortcut:identity"}}
	s := SampleLevel(levels)
	assert.Equal(t, "kernel=5;activation=relu,silu,silu;norm=shortcut:identity", s)
	got, err := ParseSample(s)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{FactorKernel: "5", FactorActivation: "relu,silu,silu", FactorNorm: "shortcut:identity"}, got)

	got, err = ParseSample(" kernel = 3 ; se_ratio=0.25")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{FactorKernel: "3", FactorSERatio: "0.25"}, got)
	for _, bad := range []string{"", "kernel", "kernel=", "=5", "kernel=5;", "kernel=5;;se_ratio=0"} {
		_, err := ParseSample(bad)
		assert.ErrorContains(t, err, "want factor=level pairs separated by ';'", "%q", bad)
	}
}

// Every sample the planner writes reads back as one level of each of the
// sweep's factors.
func TestParseSampleReadsPlannedSamples(t *testing.T) {
	f, err := LoadFile("fashion-mnist-micro")
	require.NoError(t, err)
	f.Design, f.Samples = Random, 8
	p, err := MakePlan(f)
	require.NoError(t, err)
	for _, v := range p.Variants[1:] {
		got, err := ParseSample(v.Level)
		require.NoError(t, err, v.Name)
		require.Len(t, got, len(f.Factors), v.Level)
		for _, fa := range f.Factors {
			assert.Contains(t, fa.Levels, got[fa.Name], "%s: %s", v.Name, fa.Name)
		}
	}
}

// transplantState is what a transplant changes: the spec and the group
// count of every stage.
type transplantState struct {
	spec   arch.Spec
	groups []int
}

// partValue reads one part of a network (the names of AllParts) from a
// state; the test's own definition of what each part is.
var partValue = map[string]func(transplantState) any{
	PartDepths:      func(s transplantState) any { return s.spec.Depths() },
	PartKernel:      stageField(func(st arch.Stage) any { return st.Kernel }),
	PartDilation:    stageField(func(st arch.Stage) any { return st.Dilation }),
	PartBottleneck:  stageField(func(st arch.Stage) any { return st.BottleneckMultiplier }),
	PartStrides:     stageField(func(st arch.Stage) any { return st.Stride }),
	PartGroups:      func(s transplantState) any { return slices.Clone(s.groups) },
	PartActivations: func(s transplantState) any { return s.spec.Block.Activations },
	PartSE:          func(s transplantState) any { return [2]any{s.spec.Block.SERatio, s.spec.Block.SEActivation} },
	PartNorms: func(s transplantState) any {
		return [3]any{s.spec.Block.Norms, s.spec.Block.ShortcutNorm, s.spec.Block.NormGroups}
	},
	PartStemWidth:  func(s transplantState) any { return s.spec.Stem.Width },
	PartStemLayout: func(s transplantState) any { return [3]any{s.spec.Stem.Kind, s.spec.Stem.Stride, s.spec.Stem.MaxPool} },
	PartStemKernel: func(s transplantState) any { return s.spec.Stem.Kernel },
	PartDense:      func(s transplantState) any { return s.spec.Block.DenseRatio },
	PartOrder:      func(s transplantState) any { return s.spec.Block.Order },
}

func stageField(f func(arch.Stage) any) func(transplantState) any {
	return func(s transplantState) any {
		out := make([]any, len(s.spec.Stages))
		for i, st := range s.spec.Stages {
			out[i] = f(st)
		}
		return out
	}
}

// residual is the spec with every part cleared: what no factor's
// transplant may change.
func residual(s arch.Spec) arch.Spec {
	r := s.Clone()
	r.Stem.Width, r.Stem.Kernel, r.Stem.Kind, r.Stem.Stride, r.Stem.MaxPool = 0, 0, "", 0, false
	for i := range r.Stages {
		st := &r.Stages[i]
		st.Depth, st.Kernel, st.Dilation, st.BottleneckMultiplier, st.Stride = 0, 0, 0, 0, 0
	}
	b := &r.Block
	b.Activations, b.SERatio, b.SEActivation, b.Norms, b.ShortcutNorm, b.NormGroups = nil, 0, "", nil, "", 0
	b.DenseRatio, b.Order = 0, ""
	return r
}

// transplantLevels is a level of every factor that changes the recipient
// below (resnet50: bottleneck blocks, a conv stem with a max-pool).
var transplantLevels = map[string]string{
	FactorDepthWidth:     "x2",
	FactorStageDepths:    "2,2,2,2",
	FactorKernel:         "5",
	FactorActivation:     "silu",
	FactorSERatio:        "0.25",
	FactorNorm:           "identity,batchnorm,batchnorm",
	FactorStemWidth:      "96",
	FactorStemType:       "patchify",
	FactorDownsample:     "postponed",
	FactorBottleneckMult: "0.5",
	FactorGroupWidth:     "groups:2",
	FactorDenseRatio:     "1",
	FactorDilation:       "2",
	FactorStemKernel:     "5",
	FactorSpec:           RecipeLevel,
	FactorPreact:         "true",
}

func recipient(t *testing.T) arch.Spec {
	t.Helper()
	s, err := arch.Get("resnet50")
	require.NoError(t, err)
	return s.WithDefaults()
}

func TestEveryFactorOwnsParts(t *testing.T) {
	require.Len(t, partValue, len(AllParts), "the test defines every part")
	for _, name := range FactorNames() {
		parts, err := Parts(name)
		require.NoError(t, err, name)
		assert.NotEmpty(t, parts, name)
		for _, p := range parts {
			assert.Contains(t, AllParts, p, name)
		}
		assert.NotNil(t, factors[name].transplant, name)
		_, ok := transplantLevels[name]
		assert.True(t, ok, "factor %s: add a level to transplantLevels", name)
	}
}

// Transplanting a factor's level from a spec built at it (the donor) into
// the recipient sets exactly the parts the factor owns to the donor's and
// leaves every other part, and everything no part covers, as it was.
func TestTransplantEveryFactor(t *testing.T) {
	base := recipient(t)
	for _, name := range FactorNames() {
		t.Run(name, func(t *testing.T) {
			donor, err := ApplyLevel(base, name, transplantLevels[name])
			require.NoError(t, err)
			parts, err := Parts(name)
			require.NoError(t, err)
			got := transplantState{spec: base.Clone(), groups: GroupsOf(base)}
			require.NoError(t, Transplant(name, &got.spec, got.groups, donor))
			before := transplantState{spec: base, groups: GroupsOf(base)}
			after := transplantState{spec: donor, groups: GroupsOf(donor)}
			changed := false
			for _, p := range AllParts {
				v := partValue[p]
				if slices.Contains(parts, p) {
					assert.Equal(t, v(after), v(got), "owned part %s is the donor's", p)
					changed = changed || fmt.Sprint(v(got)) != fmt.Sprint(v(before))
				} else {
					assert.Equal(t, v(before), v(got), "part %s is not %s's", p, name)
				}
			}
			assert.True(t, changed, "level %s changes one of %v", transplantLevels[name], parts)
			if name == FactorSpec {
				want := donor.Clone()
				want.Input, want.Classes = base.Input, base.Classes
				assert.Equal(t, want, got.spec, "a whole network is copied")
				return
			}
			assert.Equal(t, residual(base), residual(got.spec), "nothing outside the parts changes")
		})
	}
}

// From a donor that differs from the recipient in every part, each
// factor copies its own parts and nothing else.
func TestTransplantCopiesNothingElse(t *testing.T) {
	base := recipient(t)
	donor := base.Clone()
	donor.SetDepths(2, 2, 2, 2)
	for i := range donor.Stages {
		st := &donor.Stages[i]
		st.Kernel, st.Dilation, st.BottleneckMultiplier, st.Stride = 5, 2, 0.5, 1
		st.GroupWidth = arch.BottleneckWidth(st.Width, st.BottleneckMultiplier) / 2
	}
	donor.Block.Activations = []string{"silu", "silu", "silu"}
	donor.Block.SERatio, donor.Block.SEActivation = 0.25, "silu"
	donor.Block.Norms, donor.Block.ShortcutNorm, donor.Block.NormGroups = []string{"identity", "batchnorm", "batchnorm"}, "identity", 8
	donor.Stem = arch.Stem{Kind: arch.StemConv, Width: 96, Kernel: 3, Stride: 1, MaxPool: false}
	donor.Block.DenseRatio, donor.Block.Order = 1, arch.PreAct
	before := transplantState{spec: base, groups: GroupsOf(base)}
	all := transplantState{spec: donor, groups: GroupsOf(donor)}
	for _, p := range AllParts {
		require.NotEqual(t, fmt.Sprint(partValue[p](before)), fmt.Sprint(partValue[p](all)), "the donor differs in %s", p)
	}
	for _, name := range FactorNames() {
		if name == FactorSpec {
			continue // owns every part
		}
		parts, err := Parts(name)
		require.NoError(t, err)
		got := transplantState{spec: base.Clone(), groups: GroupsOf(base)}
		require.NoError(t, Transplant(name, &got.spec, got.groups, donor), name)
		for _, p := range AllParts {
			if !slices.Contains(parts, p) {
				assert.Equal(t, partValue[p](before), partValue[p](got), "%s changed part %s", name, p)
			}
		}
		assert.Equal(t, residual(base), residual(got.spec), "%s changed something outside the parts", name)
	}
}

func TestTransplantUnknownFactor(t *testing.T) {
	s := recipient(t)
	err := Transplant("colour", &s, GroupsOf(s), s)
	require.ErrorIs(t, err, ErrUnknownFactor)
	assert.ErrorContains(t, err, `factor "colour"`)
	_, err = Parts("colour")
	require.ErrorIs(t, err, ErrUnknownFactor)
}

func TestTransplantStageCountMismatch(t *testing.T) {
	s := recipient(t)
	micro, err := arch.Get("micro")
	require.NoError(t, err)
	require.NotEqual(t, len(s.Stages), len(micro.Stages))
	for _, name := range []string{FactorDepthWidth, FactorKernel, FactorGroupWidth, FactorDownsample, FactorSpec} {
		err := Transplant(name, &s, GroupsOf(s), micro.WithDefaults())
		assert.ErrorContains(t, err, "different number of stages", name)
		s = recipient(t)
	}
}

func TestGroupsOf(t *testing.T) {
	s := recipient(t)
	assert.Equal(t, []int{1, 1, 1, 1}, GroupsOf(s))
	for i := range s.Stages {
		s.Stages[i].GroupWidth = arch.BottleneckWidth(s.Stages[i].Width, s.Stages[i].BottleneckMultiplier) / 4
	}
	assert.Equal(t, []int{4, 4, 4, 4}, GroupsOf(s))
	micro, err := arch.Get("micro")
	require.NoError(t, err)
	for i := range micro.Stages {
		micro.Stages[i].Block, micro.Stages[i].Groups = arch.Basic, 2
	}
	assert.Equal(t, []int{2, 2, 2}, GroupsOf(micro))
}
