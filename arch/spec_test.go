package arch_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/archtest"
)

func TestListHasEveryPreset(t *testing.T) {
	want := []string{"micro", "rb-dm-preact-resnet-18-silu", "rb-dm-wrn-28-10-silu", "rb-dm-wrn-70-16-silu", "rb-rawrn-70-16", "rb-wrn-28-10", "rb-wrn-34-10", "resnet-fmnist", "resnet101", "resnet152", "resnet18", "resnet18-cifar", "resnet34", "resnet50",
		"resnext50_32x4d", "robarch-l", "robarch-m", "robarch-s", "wide_resnet50_2", "wrn-28-10"}
	assert.Equal(t, want, arch.List())
	for _, name := range want {
		s, err := arch.Get(name)
		require.NoError(t, err, name)
		assert.Equal(t, name, s.Name)
	}
}

func TestGetUnknownNamesTheChoices(t *testing.T) {
	_, err := arch.Get("resnet51")
	require.ErrorIs(t, err, arch.ErrUnknownPreset)
	assert.Contains(t, err.Error(), "robarch-s")
}

func TestGetReturnsIndependentCopies(t *testing.T) {
	a, err := arch.Get("resnet50")
	require.NoError(t, err)
	a.Stages[0].Depth = 99
	a.Block.Activations[0] = "gelu"
	b, err := arch.Get("resnet50")
	require.NoError(t, err)
	assert.Equal(t, 3, b.Stages[0].Depth)
	assert.Equal(t, "relu", b.Block.Activations[0])
}

func TestRobArchPresetsFollowThePaper(t *testing.T) {
	s, err := arch.Get("robarch-s")
	require.NoError(t, err)
	assert.Equal(t, []int{5, 8, 13, 1}, s.Depths())
	assert.Equal(t, []int{288, 576, 1120, 2160}, s.Widths())
	assert.Equal(t, arch.Stem{Kind: "conv", Width: 96, Kernel: 7, Stride: 2}, s.Stem)
	assert.Equal(t, 2, s.Stages[0].Stride)
	assert.Equal(t, []string{"silu", "silu", "silu"}, s.Block.Activations)
	assert.Equal(t, []string{"identity", "batchnorm", "batchnorm"}, s.Block.Norms)
	assert.Equal(t, 0.25, s.Block.SERatio)
	assert.Equal(t, "relu", s.Block.SEActivation)
	assert.Equal(t, "robarch", s.Naming)
}

func TestRoundTripYAMLAndJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	specs := []arch.Spec{archtest.RandomSpec(r), archtest.RandomSpec(r)}
	for _, name := range arch.List() {
		s, err := arch.Get(name)
		require.NoError(t, err)
		specs = append(specs, s)
	}
	dir := t.TempDir()
	for i, s := range specs {
		y, err := arch.EncodeYAML(s)
		require.NoError(t, err)
		back, err := arch.Parse(y, "yaml")
		require.NoError(t, err, string(y))
		assert.Equal(t, s, back, "yaml %d", i)

		j, err := arch.EncodeJSON(s)
		require.NoError(t, err)
		path := filepath.Join(dir, "spec.json")
		require.NoError(t, os.WriteFile(path, j, 0o644))
		back, err = arch.Load(path)
		require.NoError(t, err)
		assert.Equal(t, s, back, "json %d", i)
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	_, err := arch.Parse([]byte("stem: {width: 8}\nstages: [{depth: 1, width: 8}]\nblok: {}\n"), "yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "blok")
	_, err = arch.Parse([]byte(`{"stem": {"width": 8}, "stages": [{"depth": 1, "width": 8, "kernal": 3}]}`), "json")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kernal")
}

func TestValidateNamesFieldAndAllowedValues(t *testing.T) {
	base, err := arch.Get("resnet50")
	require.NoError(t, err)
	cases := []struct {
		name   string
		change func(*arch.Spec)
		field  string
		want   string
	}{
		{"negative depth", func(s *arch.Spec) { s.Stages[1].Depth = -1 }, "stages[1].depth", ">= 1"},
		{"group width", func(s *arch.Spec) { s.Stages[0].GroupWidth = 24 }, "stages[0].group_width", "divisor of the bottleneck width 64"},
		{"activation", func(s *arch.Spec) { s.Block.Activations[2] = "swish" }, "block.activations[2]", "relu, leaky_relu, elu, gelu, silu, mish, softplus, hardswish, prelu, psilu, pssilu, identity"},
		{"even kernel", func(s *arch.Spec) { s.Stages[3].Kernel = 4 }, "stages[3].kernel", "odd"},
		{"norm", func(s *arch.Spec) { s.Block.Norms[0] = "layernorm2d" }, "block.norms[0]", "batchnorm, groupnorm, instancenorm, layernorm, identity"},
		{"shortcut norm", func(s *arch.Spec) { s.Block.ShortcutNorm = "bn" }, "block.shortcut_norm", "batchnorm"},
		{"order", func(s *arch.Spec) { s.Block.Order = "middle" }, "block.order", "post, pre"},
		{"se activation", func(s *arch.Spec) { s.Block.SERatio = 0.25; s.Block.SEActivation = "tanh" }, "block.se_activation", "silu"},
		{"parametric se activation", func(s *arch.Spec) { s.Block.SERatio = 0.25; s.Block.SEActivation = "prelu" }, "block.se_activation",
			`"prelu" is invalid; want one of relu, leaky_relu, elu, gelu, silu, mish, softplus, hardswish, identity (parametric activations are not offered inside squeeze-and-excitation)`},
		{"se ratio", func(s *arch.Spec) { s.Block.SERatio = -1 }, "block.se_ratio", "0 (off)"},
		{"block kind", func(s *arch.Spec) { s.Stages[0].Block = "dense" }, "stages[0].block", "bottleneck, basic"},
		{"basic groups", func(s *arch.Spec) {
			s.Stages[0].Block = "basic"
			s.Stages[0].BottleneckMultiplier = 1
			s.Stages[0].GroupWidth = 8
		}, "stages[0].group_width", "basic blocks"},
		{"mean length", func(s *arch.Spec) { s.Input.Mean = []float64{0.5}; s.Input.Std = []float64{0.5} }, "input.mean", "one value per input channel (3)"},
		{"std zero", func(s *arch.Spec) { s.Input.Std[1] = 0 }, "input.std[1]", "> 0"},
		{"stem kernel", func(s *arch.Spec) { s.Stem.Kernel = 6 }, "stem.kernel", "odd"},
		{"patchify pool", func(s *arch.Spec) { s.Stem.Kind = "patchify"; s.Stem.Kernel = 4; s.Stem.Stride = 0 }, "stem.max_pool", "false"},
		{"no stages", func(s *arch.Spec) { s.Stages = nil }, "stages", "at least one"},
		{"classes", func(s *arch.Spec) { s.Classes = -3 }, "classes", ">= 1"},
		{"naming", func(s *arch.Spec) { s.Naming = "timm" }, "naming", "robarch, torchvision, robustbench-wrn, robustbench-dm"},
		{"dense", func(s *arch.Spec) { s.Block.DenseRatio = -2 }, "block.dense_ratio", "0 (off)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base.Clone()
			c.change(&s)
			err := s.Validate()
			requireFieldError(t, err, c.field, c.want)
			_, err = arch.Params(s)
			assert.True(t, arch.IsValidation(err))
		})
	}
	assert.NoError(t, base.Validate())
}

// The wide-ResNet options and RobustBench's namings name the bad field
// and what is allowed.
func TestValidateWideResNetOptions(t *testing.T) {
	base, err := arch.Get("rb-rawrn-70-16")
	require.NoError(t, err)
	cases := []struct {
		name   string
		change func(*arch.Spec)
		field  string
		want   string
	}{
		{"padding value", func(s *arch.Spec) { s.Block.Padding = "same" }, "block.padding", "symmetric, asymmetric"},
		{"asymmetric kernel", func(s *arch.Spec) { s.Stages[2].Kernel = 5 }, "block.padding", "stages[2] has kernel 5"},
		{"asymmetric stride", func(s *arch.Spec) { s.Stages[1].Stride = 3 }, "block.padding", "stride 1 or 2"},
		{"se position value", func(s *arch.Spec) { s.Block.SEPosition = "middle" }, "block.se_position", "last, first"},
		{"se first post-act", func(s *arch.Spec) {
			s.Naming, s.Block.Order, s.Block.ShortcutNorm, s.Block.SEPosition = arch.NamingRobArch, arch.PostAct, arch.BatchNorm, arch.SEFirst
		}, "block.se_position", "basic in pre-activation order"},
		{"se width from", func(s *arch.Spec) { s.Block.SEWidthFrom = "mid" }, "block.se_width_from", "input, output"},
		{"groups divide", func(s *arch.Spec) { s.Stages[1].Groups = 5 }, "stages[1].groups", "divisor of the stage width 432 and of its input width 216"},
		{"groups negative", func(s *arch.Spec) { s.Stages[0].Groups = -1 }, "stages[0].groups", "0 or 1"},
		{"naming order", func(s *arch.Spec) { s.Block.Order = arch.PostAct }, "block.order", "pre with naming robustbench-dm"},
		{"naming shortcut norm", func(s *arch.Spec) { s.Block.ShortcutNorm = arch.BatchNorm }, "block.shortcut_norm", "identity (a bare convolution) with naming robustbench-dm"},
		{"naming block", func(s *arch.Spec) {
			s.Block.Padding = arch.PadSymmetric
			s.Stages[0].Block, s.Stages[0].BottleneckMultiplier = arch.Bottleneck, 0.25
		}, "stages[0].block", "basic with naming robustbench-dm"},
		{"classic has no SE", func(s *arch.Spec) { s.Naming = arch.NamingRBWRN }, "block.se_ratio", "use robustbench-dm"},
		{"naming stem", func(s *arch.Spec) { s.Stem.MaxPool = true }, "stem", "without max-pool"},
		{"shortcut kernel value", func(s *arch.Spec) { s.Block.ShortcutKernel = 5 }, "block.shortcut_kernel", "1 or 3"},
		{"shortcut input value", func(s *arch.Spec) { s.Block.ShortcutInput = "norm" }, "block.shortcut_input", "preactivated, raw"},
		{"raw shortcut post-act", func(s *arch.Spec) {
			s.Naming, s.Block.Order, s.Block.ShortcutNorm, s.Block.ShortcutInput = arch.NamingRobArch, arch.PostAct, arch.BatchNorm, arch.ShortcutRaw
		}, "block.shortcut_input", "preactivated (the default) in post-activation order"},
		{"dm naming wants a 1×1 shortcut", func(s *arch.Spec) { s.Block.ShortcutKernel = 3 }, "block.shortcut_kernel", "1 with naming robustbench-dm"},
		{"dm naming wants a pre-activated shortcut", func(s *arch.Spec) { s.Block.ShortcutInput = arch.ShortcutRaw }, "block.shortcut_input", "preactivated with naming robustbench-dm"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base.Clone()
			c.change(&s)
			err := s.Validate()
			requireFieldError(t, err, c.field, c.want)
		})
	}
	assert.NoError(t, base.Validate())
}

// DMPreActResNet's naming fixes its 3×3 raw-input shortcut and refuses
// what the class does not have.
func TestValidateDMPreActNaming(t *testing.T) {
	base, err := arch.Get("rb-dm-preact-resnet-18-silu")
	require.NoError(t, err)
	cases := []struct {
		name   string
		change func(*arch.Spec)
		field  string
		want   string
	}{
		{"1×1 shortcut", func(s *arch.Spec) { s.Block.ShortcutKernel = 1 }, "block.shortcut_kernel", "3 with naming robustbench-dm-preact"},
		{"pre-activated shortcut", func(s *arch.Spec) { s.Block.ShortcutInput = arch.ShortcutPreAct }, "block.shortcut_input", "raw with naming robustbench-dm-preact"},
		{"no SE", func(s *arch.Spec) { s.Block.SERatio = 0.25 }, "block.se_ratio", "DMPreActResNet has no SE"},
		{"no groups", func(s *arch.Spec) { s.Stages[1].Groups = 2 }, "stages[1].groups", "DMPreActResNet has no grouped convolutions"},
		{"pre-activation", func(s *arch.Spec) { s.Block.Order, s.Block.ShortcutInput = arch.PostAct, arch.ShortcutPreAct }, "block.order", "pre with naming robustbench-dm-preact"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base.Clone()
			c.change(&s)
			requireFieldError(t, s.Validate(), c.field, c.want)
		})
	}
	assert.NoError(t, base.Validate())
}

// A 3×3 shortcut is padded like the block's first convolution (one-sided
// at stride 2 with asymmetric padding, one on every side otherwise), keeps
// the branch's output size, and counts 9× the weights and MACs of a 1×1
// one at the same output size.
func TestThreeByThreeShortcutLayout(t *testing.T) {
	s, err := arch.Get("rb-dm-preact-resnet-18-silu")
	require.NoError(t, err)
	l, err := arch.Resolve(s)
	require.NoError(t, err)
	strided := l.Stages[1].Blocks[0]
	require.True(t, strided.Projection)
	assert.False(t, l.Stages[0].Blocks[0].Projection, "64 → 64 at stride 1: identity")
	assert.Equal(t, [3]int{3, 0, 1}, [3]int{strided.ShortcutKernel, strided.ShortcutPadLow, strided.ShortcutPadHigh})
	assert.True(t, strided.ShortcutRaw)
	assert.Equal(t, []int{32, 16, 8, 4}, []int{l.Stages[0].OutH, l.Stages[1].OutH, l.Stages[2].OutH, l.Stages[3].OutH})

	one := s.Clone()
	one.Naming, one.Block.ShortcutKernel, one.Block.ShortcutInput = arch.NamingRobArch, 1, arch.ShortcutPreAct
	l1, err := arch.Resolve(one)
	require.NoError(t, err)
	// Three projections: 64→128 at 16×16, 128→256 at 8×8, 256→512 at 4×4.
	var w, macs int64
	for _, p := range []struct{ in, out, hw int64 }{{64, 128, 16}, {128, 256, 8}, {256, 512, 4}} {
		w += p.in * p.out
		macs += p.in * p.out * p.hw * p.hw
	}
	assert.Equal(t, 8*w, l.Total.Params-l1.Total.Params)
	assert.Equal(t, 8*macs, l.Total.MACs-l1.Total.MACs)

	sym := s.Clone()
	sym.Block.Padding = arch.PadSymmetric
	ls, err := arch.Resolve(sym)
	require.NoError(t, err)
	b := ls.Stages[1].Blocks[0]
	assert.Equal(t, [2]int{1, 1}, [2]int{b.ShortcutPadLow, b.ShortcutPadHigh})
	assert.Equal(t, 16, b.OutH)
}

// Asymmetric padding keeps CIFAR's even feature maps at the sizes of
// symmetric padding (32, 16, 8) and the strided block's layout records
// the one-sided padding; SE widths follow the block's output with
// se_width_from output, its input by default.
func TestWideResNetLayout(t *testing.T) {
	s, err := arch.Get("rb-rawrn-70-16")
	require.NoError(t, err)
	l, err := arch.Resolve(s)
	require.NoError(t, err)
	first, strided := l.Stages[0].Blocks[0], l.Stages[1].Blocks[0]
	assert.Equal(t, [2]int{1, 1}, [2]int{first.PadLow, first.PadHigh})
	assert.Equal(t, [2]int{0, 1}, [2]int{strided.PadLow, strided.PadHigh})
	assert.Equal(t, []int{32, 16, 8}, []int{l.Stages[0].OutH, l.Stages[1].OutH, l.Stages[2].OutH})
	assert.Equal(t, 54, first.SE, "round(0.25 × 216)")
	s.Block.SEWidthFrom = arch.SEFromInput
	l, err = arch.Resolve(s)
	require.NoError(t, err)
	assert.Equal(t, 24, l.Stages[0].Blocks[0].SE, "round(0.25 × 96)")

	// Odd maps: asymmetric padding would keep one row less than the
	// strided shortcut, so the sum cannot be formed.
	s.Input.Height, s.Input.Width = 33, 33
	_, err = arch.Resolve(s)
	assert.ErrorContains(t, err, "asymmetric padding needs an even feature map")
	s.Block.Padding = arch.PadSymmetric
	l, err = arch.Resolve(s)
	require.NoError(t, err)
	assert.Equal(t, 17, l.Stages[1].OutH, "(33 + 2 − 3) / 2 + 1")
}

// Grouped basic blocks divide both convolutions' weights by the group
// count; the shortcut and the head are untouched.
func TestGroupedBasicBlocksCount(t *testing.T) {
	s, err := arch.Get("rb-dm-wrn-28-10-silu")
	require.NoError(t, err)
	dense, err := arch.Params(s)
	require.NoError(t, err)
	l, err := arch.Resolve(s)
	require.NoError(t, err)
	var convs int64
	for _, st := range l.Stages {
		for _, b := range st.Blocks {
			convs += int64(b.Out)*int64(b.In)*9 + int64(b.Out)*int64(b.Mid)*9
		}
	}
	for i := range s.Stages {
		s.Stages[i].Groups = 4
	}
	grouped, err := arch.Params(s)
	require.NoError(t, err)
	assert.Equal(t, dense-convs*3/4, grouped)
}

func TestTooSmallInputIsAnError(t *testing.T) {
	s, err := arch.Get("resnet50")
	require.NoError(t, err)
	_, err = arch.MACs(s, 1, 1)
	require.NoError(t, err, "PyTorch's formula keeps 1×1 maps alive through padded convs")
	s.Stem = arch.Stem{Kind: "patchify", Width: 64, Kernel: 16}
	s.Input.Height, s.Input.Width = 8, 8
	_, err = arch.Params(s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "too small")
}

// Random specs are valid and cover every option of the design space, the
// wide-ResNet ones included (they were once left out of the draws, and
// the property tests then said nothing about them).
func TestRandomSpecsAreValid(t *testing.T) {
	r := archtest.Rand(7, 7)
	seen := map[string]bool{}
	for range 500 {
		s := archtest.RandomSpec(r)
		require.NoError(t, arch.Check(s), "%+v", s)
		b := s.Block
		seen["naming "+s.Naming] = true
		seen["padding "+b.Padding] = true
		seen["order "+b.Order] = true
		seen["se_width_from "+b.SEWidthFrom] = true
		seen[fmt.Sprintf("shortcut %d %s", b.ShortcutKernel, b.ShortcutInput)] = true
		for _, a := range b.Activations {
			seen["activation "+a] = true
		}
		for _, n := range append(b.Norms, b.ShortcutNorm) {
			seen["norm "+n] = true
		}
		if b.SERatio > 0 {
			seen["se_position "+b.SEPosition] = true
		}
		for _, st := range s.Stages {
			if st.Block == arch.Basic && st.Groups > 1 {
				seen["grouped basic"] = true
			}
		}
	}
	for _, want := range []string{
		"naming robarch", "naming torchvision", "naming robustbench-wrn", "naming robustbench-dm", "naming robustbench-dm-preact",
		"padding symmetric", "padding asymmetric", "order pre", "order post", "se_width_from input", "se_width_from output",
		"se_position first", "se_position last", "shortcut 1 preactivated", "shortcut 3 preactivated", "shortcut 1 raw", "shortcut 3 raw",
		"grouped basic",
		"activation prelu", "activation psilu", "activation pssilu", "norm instancenorm", "norm layernorm",
	} {
		assert.True(t, seen[want], want)
	}
}

func TestWidthDepthRatio(t *testing.T) {
	s, err := arch.Get("robarch-s")
	require.NoError(t, err)
	// (288/5 + 576/8 + 1120/13) / 3; the last stage (depth 1) is left out.
	assert.InDelta(t, (288.0/5+576.0/8+1120.0/13)/3, arch.WidthDepthRatio(s), 1e-9)
	one := arch.Spec{Stages: []arch.Stage{{Depth: 4, Width: 64}}}
	assert.InDelta(t, 16, arch.WidthDepthRatio(one), 1e-9)
}

func TestParseInput(t *testing.T) {
	c, h, w, err := arch.ParseInput("3x224x200")
	require.NoError(t, err)
	assert.Equal(t, []int{3, 224, 200}, []int{c, h, w})
	c, h, w, err = arch.ParseInput("64X64")
	require.NoError(t, err)
	assert.Equal(t, []int{0, 64, 64}, []int{c, h, w})
	for _, bad := range []string{"", "3x", "3x0x4", "axbxc", "1x2x3x4", "3x2.5x4"} {
		_, _, _, err := arch.ParseInput(bad)
		assert.Error(t, err, bad)
	}
}

// requireFieldError checks that err is a validation error naming field,
// with want in its message.
func requireFieldError(t *testing.T, err error, field, want string) {
	t.Helper()
	var verr *arch.ValidationError
	require.True(t, errors.As(err, &verr), "want a validation error, got %v", err)
	var fields []string
	for _, f := range verr.Fields {
		fields = append(fields, f.Field)
	}
	require.Contains(t, fields, field)
	assert.Contains(t, err.Error(), want)
}
