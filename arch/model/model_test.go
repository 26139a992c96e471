package model_test

import (
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
