package arch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Known parameter counts: torchvision's for its models, the official
// RobArch ConfigurableModel's for robarch-s/m/l (which includes SE and the
// 1000-class head), the usual CIFAR counts for the small-image nets.
func TestPresetParamsMatchPublishedCounts(t *testing.T) {
	known := map[string]int64{
		"resnet18":        11_689_512,
		"resnet34":        21_797_672,
		"resnet50":        25_557_032,
		"resnet101":       44_549_160,
		"resnet152":       60_192_808,
		"wide_resnet50_2": 68_883_240,
		"resnext50_32x4d": 25_028_904,
		"robarch-s":       26_143_228,
		"robarch-m":       45_901_928,
		"robarch-l":       104_065_776,
		"resnet18-cifar":  11_173_962,
		"wrn-28-10":       36_479_194,
		// RobustBench's own definitions: RaWRN-70-16's count is the one
		// RobustBench reports for Peng2023Robust; the others were counted
		// from its WideResNet(depth, widen_factor) and
		// DMWideResNet(depth, width, activation_fn=nn.SiLU) at commit
		// 78fcc9e (sum of p.numel() over parameters()).
		"rb-rawrn-70-16":       267_240_802,
		"rb-dm-wrn-28-10-silu": 36_479_194,
		"rb-dm-wrn-70-16-silu": 266_796_506,
		"rb-wrn-28-10":         36_479_194,
		"rb-wrn-34-10":         46_160_474,
		// DMPreActResNet(num_classes=10, depth=18, activation_fn=Swish)
		// at the same commit, counted the same way.
		"rb-dm-preact-resnet-18-silu": 12_548_426,
	}
	for name, want := range known {
		t.Run(name, func(t *testing.T) {
			s, err := Get(name)
			require.NoError(t, err)
			got, err := Params(s)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestMicroIsSmall(t *testing.T) {
	s, err := Get("micro")
	require.NoError(t, err)
	n, err := Params(s)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, int64(250_000))
	assert.LessOrEqual(t, n, int64(350_000))
	assert.Equal(t, 1, s.Input.Channels)
	assert.Equal(t, 28, s.Input.Height)
	assert.Equal(t, 10, s.Classes)
}

// torchvision's published GFLOPS (multiply-accumulates, 224×224).
func TestMACsMatchTorchvision(t *testing.T) {
	cases := []struct {
		name  string
		gmacs float64
	}{
		{"resnet18", 1.81}, {"resnet34", 3.66}, {"resnet50", 4.09}, {"resnet101", 7.80},
		{"resnet152", 11.51}, {"wide_resnet50_2", 11.40}, {"resnext50_32x4d", 4.23},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Get(c.name)
			require.NoError(t, err)
			m, err := MACs(s, 0, 0)
			require.NoError(t, err)
			assert.InDelta(t, c.gmacs, float64(m)/1e9, 0.006)
		})
	}
}

// Multiply-accumulates of RobustBench's DMPreActResNet(depth=18) for one
// 32×32 image, summed by forward hooks over its Conv2d and Linear layers
// (output elements × weights per output) at commit 78fcc9e; the 3×3
// shortcuts on the raw input are counted with their padding.
func TestMACsMatchRobustBenchDMPreAct(t *testing.T) {
	s, err := Get("rb-dm-preact-resnet-18-silu")
	require.NoError(t, err)
	m, err := MACs(s, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(605_754_368), m)
}

// Parametric activations add their scalars once per activation instance
// (prelu and psilu 1, pssilu 2) and the norms instancenorm and layernorm
// a weight and bias of C each, like batch norm; MACs do not change. The
// counts are the published ones above plus the activations' scalars,
// counted by hand: post-activation bottlenecks use all three positions,
// post-activation basic blocks positions 0 and 2, pre-activation basic
// blocks 0 and 1 plus the final activation (position 0) after the last
// stage. TestInteropNamesMatchPyTorch checks a count against PyTorch's.
func TestParamsCountParametricActivationsAndNewNorms(t *testing.T) {
	cases := []struct {
		preset   string
		acts     []string
		norms    []string
		shortcut string
		want     int64
	}{
		// 8 basic blocks × (prelu 1 + pssilu 2).
		{"resnet18-cifar", []string{"prelu", "psilu", "pssilu"}, []string{"instancenorm", "layernorm", "instancenorm"}, "layernorm", 11_173_962 + 8*3},
		// 16 bottlenecks × (1 + 2 + 1).
		{"resnet50", []string{"psilu", "pssilu", "prelu"}, []string{"layernorm", "layernorm", "layernorm"}, "instancenorm", 25_557_032 + 16*4},
		// 27 bottlenecks × 3 × 2 (SE keeps its ReLU).
		{"robarch-s", []string{"pssilu", "pssilu", "pssilu"}, []string{"identity", "instancenorm", "layernorm"}, "batchnorm", 26_143_228 + 27*6},
		// 8 pre-activation basic blocks × (pssilu 2 + prelu 1), final pssilu 2.
		{"rb-dm-preact-resnet-18-silu", []string{"pssilu", "prelu", "psilu"}, []string{"layernorm", "instancenorm", "batchnorm"}, "identity", 12_548_426 + 8*3 + 2},
		// 12 blocks × (prelu 1 + psilu 1), final prelu 1.
		{"rb-wrn-28-10", []string{"prelu", "psilu", "relu"}, []string{"batchnorm", "batchnorm", "batchnorm"}, "identity", 36_479_194 + 12*2 + 1},
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			s, err := Get(c.preset)
			require.NoError(t, err)
			base, err := MACs(s, 0, 0)
			require.NoError(t, err)
			s.Block.Activations, s.Block.Norms, s.Block.ShortcutNorm = c.acts, c.norms, c.shortcut
			got, err := Params(s)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			m, err := MACs(s, 0, 0)
			require.NoError(t, err)
			assert.Equal(t, base, m, "activations and norms add no MACs")
		})
	}
}
