package model_test

import (
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/archtest"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchrt"
)

// build builds spec on the CPU with libtorch seeded.
func build(t testing.TB, spec arch.Spec, seed int64) (*model.Net, *nn.VarStore) {
	t.Helper()
	// Torch work stays on one OS thread (grad mode is thread-local); the
	// test's goroutine ends with the test.
	runtime.LockOSThread()
	torchrt.Seed(seed)
	vs := nn.NewVarStore(gotch.CPU)
	net, err := model.Build(vs, spec)
	require.NoError(t, err)
	t.Cleanup(vs.Destroy)
	return net, vs
}

// trainableElements counts the VarStore's trainable elements, independently
// of the Net's own bookkeeping.
func trainableElements(vs *nn.VarStore) int64 {
	var n int64
	for _, v := range vs.TrainableVariables() {
		n += int64(v.Numel())
	}
	return n
}

// forwardBackward runs a training forward pass and a backward pass on a
// batch of the given size and checks the shapes and that gradients reach
// the first conv.
func forwardBackward(t *testing.T, net *model.Net, vs *nn.VarStore, batch, h, w int) {
	t.Helper()
	spec := net.Spec()
	x, err := ts.Rand([]int64{int64(batch), int64(spec.Input.Channels), int64(h), int64(w)}, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	defer x.MustDrop()
	out, err := net.Forward(x, true)
	require.NoError(t, err)
	defer out.MustDrop()
	shape, err := out.Size()
	require.NoError(t, err)
	assert.Equal(t, []int64{int64(batch), int64(spec.Classes)}, shape)
	loss, err := out.Sum(gotch.Float, false)
	require.NoError(t, err)
	defer loss.MustDrop()
	require.NoError(t, loss.Backward())
	first := net.Vars()[0]
	for _, v := range net.Vars() {
		if !v.Buffer {
			first = v
			break
		}
	}
	g, err := first.Tensor.Grad(false)
	require.NoError(t, err)
	defer g.MustDrop()
	norm, err := g.Abs(false)
	require.NoError(t, err)
	sum := norm.MustSum(gotch.Float, true).Float64Values(true)[0]
	assert.Greater(t, sum, 0.0, "gradient reaches %s", first.Name)
}

func TestEveryPresetBuildsWithTheExactCount(t *testing.T) {
	for _, name := range arch.List() {
		t.Run(name, func(t *testing.T) {
			spec, err := arch.Get(name)
			require.NoError(t, err)
			want, err := arch.Params(spec)
			require.NoError(t, err)
			net, vs := build(t, spec, 1)
			assert.Equal(t, want, net.NumParams())
			assert.Equal(t, want, trainableElements(vs))
			h, w := spec.Input.Height, spec.Input.Width
			if h > 64 {
				h, w = 64, 64
			}
			forwardBackward(t, net, vs, 2, h, w)
		})
	}
}

func TestRandomSpecsBuildWithTheExactCount(t *testing.T) {
	r := archtest.Rand(42, 1)
	for i := range 40 {
		spec := archtest.RandomSpec(r)
		want, err := arch.Params(spec)
		require.NoError(t, err)
		net, vs := build(t, spec, int64(i))
		require.Equal(t, want, trainableElements(vs), "spec %d: %+v", i, spec)
		forwardBackward(t, net, vs, 2, spec.Input.Height, spec.Input.Width)
	}
}

// paramSpecs are micro with RobArch's parametric activations and the
// norms instancenorm and layernorm, in both orders, and a bottleneck
// version (every position used; with a group norm).
func paramSpecs(t *testing.T) map[string]arch.Spec {
	t.Helper()
	micro, err := arch.Get("micro")
	require.NoError(t, err)
	micro.Block.Activations = []string{arch.PReLU, arch.PSiLU, arch.PSSiLU}
	micro.Block.Norms = []string{arch.InstanceNorm, arch.LayerNorm, arch.BatchNorm}
	micro.Block.ShortcutNorm = arch.LayerNorm
	pre := micro.Clone()
	pre.Block.Order = arch.PreAct
	pre.Block.Activations = []string{arch.PSSiLU, arch.PReLU, arch.PSiLU}
	bottleneck := micro.Clone()
	bottleneck.Naming = arch.NamingRobArch
	for i := range bottleneck.Stages {
		bottleneck.Stages[i].Block, bottleneck.Stages[i].BottleneckMultiplier = arch.Bottleneck, 0.5
	}
	bottleneck.Block.Norms = []string{arch.GroupNorm, arch.LayerNorm, arch.InstanceNorm}
	return map[string]arch.Spec{"micro-param": micro, "micro-param-preact": pre, "micro-param-bottleneck": bottleneck}
}

// activationParams are the net's one-element parameters: the parametric
// activations' (every other parameter of these nets has C elements).
func activationParams(net *model.Net) []model.Var {
	var out []model.Var
	for _, v := range net.Vars() {
		if !v.Buffer && v.Tensor.Numel() == 1 {
			out = append(out, v)
		}
	}
	return out
}

// The parametric activations' parameters learn: they are counted, every
// one receives a nonzero gradient, and a few SGD steps move each of them;
// and the net trains and evaluates under bf16 autocast, where its
// activations and norms get bf16 inputs and fp32 parameters (group and
// layer norms failed there before they computed in fp32).
func TestParametricActivationsLearn(t *testing.T) {
	for name, spec := range paramSpecs(t) {
		t.Run(name, func(t *testing.T) {
			net, _ := build(t, spec, 3)
			params := activationParams(net)
			relu := spec.Clone()
			relu.Block.Activations = []string{"relu", "relu", "relu"}
			with, err := arch.Params(spec)
			require.NoError(t, err)
			without, err := arch.Params(relu)
			require.NoError(t, err)
			var n int64
			for _, p := range params {
				n += int64(p.Tensor.Numel())
			}
			require.Equal(t, with-without, n, "the one-element parameters are the activations'")
			require.NotZero(t, n)
			before := map[string]float64{}
			for _, p := range params {
				before[p.Name] = p.Tensor.Float64Values()[0]
			}

			s := net.Spec()
			torchrt.Seed(4)
			x, err := ts.Rand([]int64{4, int64(s.Input.Channels), int64(s.Input.Height), int64(s.Input.Width)}, gotch.Float, gotch.CPU)
			require.NoError(t, err)
			defer x.MustDrop()
			for _, precision := range []amp.Precision{amp.FP32, amp.BF16, amp.FP32} {
				m, err := amp.Wrap(net, gotch.CPU, precision)
				require.NoError(t, err)
				out := m.ForwardT(x, true)
				sq := out.MustSquare(false)
				loss := sq.MustSum(gotch.Float, true)
				require.NoError(t, loss.Backward())
				require.False(t, math.IsNaN(loss.Float64Values()[0]), "%s loss", precision)
				loss.MustDrop()
				out.MustDrop()
				ts.NoGrad(func() {
					for _, p := range params {
						g, err := p.Tensor.Grad(false)
						require.NoError(t, err)
						gv := g.Float64Values()[0]
						assert.NotZero(t, gv, "%s: %s gets a gradient", precision, p.Name)
						assert.False(t, math.IsNaN(gv) || math.IsInf(gv, 0), "%s: %s", precision, p.Name)
						// p -= 0.05·g
						step := g.MustMulScalar(ts.FloatScalar(0.05), true)
						p.Tensor.MustSub_(step)
						step.MustDrop()
						p.Tensor.ZeroGrad()
					}
				})
				for _, v := range net.Vars() {
					if !v.Buffer {
						v.Tensor.ZeroGrad()
					}
				}
			}
			for _, p := range params {
				assert.NotEqual(t, before[p.Name], p.Tensor.Float64Values()[0], "%s moved", p.Name)
			}
			ts.NoGrad(func() {
				m, err := amp.Wrap(net, gotch.CPU, amp.BF16)
				require.NoError(t, err)
				out := m.ForwardT(x, false)
				defer out.MustDrop()
				for _, v := range out.Float64Values() {
					require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "bf16 eval logits are finite")
				}
			})
		})
	}
}
