package arch_test

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
)

func within(t *testing.T, got, budget int64, tol float64) {
	t.Helper()
	assert.LessOrEqual(t, math.Abs(float64(got-budget)), tol*float64(budget), "got %d for budget %d", got, budget)
}

// The RobArch study's typical variant: ResNet-50 with a changed component,
// brought back to 26M.
func TestFitResNet50VariantsTo26M(t *testing.T) {
	base, err := arch.Get("resnet50")
	require.NoError(t, err)
	variants := map[string]func(*arch.Spec){
		"kernel 5": func(s *arch.Spec) { s.SetKernel(5) },
		"silu":     func(s *arch.Spec) { s.Block.Activations = []string{"silu", "silu", "silu"} },
		"se 0.25":  func(s *arch.Spec) { s.Block.SERatio = 0.25 },
		"depths":   func(s *arch.Spec) { s.SetDepths(5, 8, 13, 1) },
		"all four": func(s *arch.Spec) {
			s.SetKernel(5)
			s.Block.Activations = []string{"silu", "silu", "silu"}
			s.Block.SERatio = 0.25
			s.SetDepths(5, 8, 13, 1)
		},
	}
	const budget = 26_000_000
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			s := base.Clone()
			change(&s)
			fitted, n, err := arch.Fit(s, budget, arch.FitOptions{})
			require.NoError(t, err)
			within(t, n, budget, arch.DefaultTolerance)
			exact, err := arch.Params(fitted)
			require.NoError(t, err)
			assert.Equal(t, exact, n, "Fit reports the fitted spec's exact count")
			assert.Equal(t, s.Depths(), fitted.Depths(), "width-only fit keeps depths")
			for _, w := range fitted.Widths() {
				assert.Zero(t, w%8, "widths stay multiples of 8")
			}
			assert.Equal(t, s.Stem, fitted.Stem)
		})
	}
}

func TestFitKeepsGroupsDivisible(t *testing.T) {
	for _, name := range []string{"robarch-s", "resnext50_32x4d"} {
		s, err := arch.Get(name)
		require.NoError(t, err)
		for _, budget := range []int64{10_000_000, 40_000_000} {
			fitted, n, err := arch.Fit(s, budget, arch.FitOptions{Tolerance: 0.05})
			require.NoError(t, err, "%s at %d", name, budget)
			within(t, n, budget, 0.05)
			for i, st := range fitted.Stages {
				mid := arch.BottleneckWidth(st.Width, st.BottleneckMultiplier)
				oldMid := arch.BottleneckWidth(s.Stages[i].Width, s.Stages[i].BottleneckMultiplier)
				assert.Zero(t, mid%st.GroupWidth)
				assert.Equal(t, oldMid/s.Stages[i].GroupWidth, mid/st.GroupWidth, "number of groups kept")
			}
		}
	}
}

func TestFitTightTolerance(t *testing.T) {
	s, err := arch.Get("resnet50")
	require.NoError(t, err)
	s.SetKernel(5)
	_, n, err := arch.Fit(s, 26_000_000, arch.FitOptions{Tolerance: 0.002})
	require.NoError(t, err)
	within(t, n, 26_000_000, 0.002)
}

func TestFitScaleDepth(t *testing.T) {
	s, err := arch.Get("resnet50")
	require.NoError(t, err)
	fitted, n, err := arch.Fit(s, 8_000_000, arch.FitOptions{ScaleDepth: true, ScaleStem: true})
	require.NoError(t, err)
	within(t, n, 8_000_000, arch.DefaultTolerance)
	assert.Less(t, fitted.Stages[2].Depth, 6, "a third of the budget also thins depth")
	assert.Less(t, fitted.Stem.Width, 64)
	for _, d := range fitted.Depths() {
		assert.GreaterOrEqual(t, d, 1)
	}
}

func TestFitInfeasibleReportsNearest(t *testing.T) {
	s, err := arch.Get("resnet50")
	require.NoError(t, err)
	// The stem and classifier alone exceed 1000 parameters.
	_, _, err = arch.Fit(s, 1000, arch.FitOptions{})
	var inf *arch.InfeasibleError
	require.True(t, errors.As(err, &inf), "%v", err)
	assert.Greater(t, inf.Nearest, int64(1000))
	n, err2 := arch.Params(inf.NearestSpec)
	require.NoError(t, err2)
	assert.Equal(t, inf.Nearest, n)
	assert.Contains(t, err.Error(), "nearest reachable count")

	// A tiny net whose width steps are coarser than the tolerance.
	tiny := arch.Spec{Classes: 2, Input: arch.Input{Channels: 1, Height: 8, Width: 8},
		Stem: arch.Stem{Width: 8}, Stages: []arch.Stage{{Depth: 1, Width: 8, Block: "basic"}}}
	n8, err := arch.Params(tiny)
	require.NoError(t, err)
	tiny.Stages[0].Width = 16
	n16, err := arch.Params(tiny)
	require.NoError(t, err)
	mid := (n8 + n16) / 2
	_, _, err = arch.Fit(tiny, mid, arch.FitOptions{Tolerance: 0.001})
	require.True(t, errors.As(err, &inf), "%v", err)
	assert.Contains(t, []int64{n8, n16}, inf.Nearest)
}

func TestFitRejectsBadOptions(t *testing.T) {
	s, err := arch.Get("micro")
	require.NoError(t, err)
	_, _, err = arch.Fit(s, 0, arch.FitOptions{})
	assert.Error(t, err)
	_, _, err = arch.Fit(s, 300_000, arch.FitOptions{Tolerance: 1.5})
	assert.ErrorContains(t, err, "tolerance")
}

// Fitting a wide ResNet with grouped basic blocks keeps every width a
// multiple of its group count.
func TestFitKeepsBasicGroupsDivisible(t *testing.T) {
	s, err := arch.Get("rb-rawrn-70-16")
	require.NoError(t, err)
	s.SetDepths(4, 4, 4)
	for i := range s.Stages {
		s.Stages[i].Groups = 4
	}
	fitted, _, err := arch.Fit(s, 20_000_000, arch.FitOptions{Tolerance: 0.02, Quantum: 4})
	require.NoError(t, err)
	for i, st := range fitted.Stages {
		assert.Zero(t, st.Width%4, "stages[%d] width %d", i, st.Width)
	}
	n, err := arch.Params(fitted)
	require.NoError(t, err)
	assert.InDelta(t, 20e6, float64(n), 0.02*20e6)
}
