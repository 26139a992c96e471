package model_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/archtest"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/torchrt"
)

// roughen moves a net off its initial state, so that folding has
// something to fold: running statistics from training-mode passes, and
// norm weights and biases (every 1-D parameter) drawn from U(0.5, 1.5).
func roughen(t *testing.T, net *model.Net, x *ts.Tensor) {
	t.Helper()
	ts.NoGrad(func() {
		for range 3 {
			net.ForwardT(x, true).MustDrop()
		}
		for _, v := range net.Vars() {
			if v.Buffer || v.Tensor.Dim() != 1 {
				continue
			}
			u, err := ts.Rand(v.Tensor.MustSize(), gotch.Float, gotch.CPU)
			require.NoError(t, err)
			u = u.MustAddScalar(ts.FloatScalar(0.5), true)
			v.Tensor.Copy_(u)
			u.MustDrop()
		}
	})
}

// evalInputGrad is the gradient of Σ logits² with respect to x, and the logits.
func evalInputGrad(t *testing.T, f func(*ts.Tensor) (*ts.Tensor, error), x *ts.Tensor) (logits, grad []float32) {
	t.Helper()
	leaf, err := x.Detach(false)
	require.NoError(t, err)
	defer leaf.MustDrop()
	leaf, err = leaf.SetRequiresGrad(true, true)
	require.NoError(t, err)
	defer leaf.MustDrop()
	out, err := f(leaf)
	require.NoError(t, err)
	defer out.MustDrop()
	logits = tensorValues(t, out)
	sq := out.MustSquare(false)
	defer sq.MustDrop()
	loss := sq.MustSum(gotch.Float, false)
	defer loss.MustDrop()
	g, err := ts.RunBackward([]*ts.Tensor{loss}, []*ts.Tensor{leaf}, false, false)
	require.NoError(t, err)
	defer g[0].MustDrop()
	return logits, tensorValues(t, g[0])
}

func relDiff(a, b []float32) float64 { return maxAbsDiff(a, b) / (1 + maxAbs(a)) }

// l2RelDiff is ‖a − b‖ / ‖a‖. Input gradients are compared this way: where
// a unit's pre-activation lies within rounding of 0, the two computations
// may take different sides of the ReLU, and the gradient then differs in
// that unit's receptive field (seen with one of seven seeds on micro).
func l2RelDiff(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d += float64(a[i]-b[i]) * float64(a[i]-b[i])
		n += float64(a[i]) * float64(a[i])
	}
	return math.Sqrt(d / max(n, 1e-30))
}

// Folding keeps the eval-mode function and its input gradient (what
// attacks use) up to rounding, in both memory formats and block orders.
func TestFoldComputesTheSameFunction(t *testing.T) {
	micro, err := arch.Get("micro")
	require.NoError(t, err)
	pre := micro
	pre.Block.Order = arch.PreAct
	specs := map[string]arch.Spec{"micro": micro, "micro-preact": pre}
	for name, spec := range geluSpecs(t) {
		specs[name] = spec
	}
	for name, spec := range paramSpecs(t) {
		specs[name] = spec
	}
	r := archtest.Rand(5, 9)
	for i := range 8 {
		specs[fmt.Sprintf("random-%d", i)] = archtest.RandomSpec(r)
	}
	for name, spec := range specs {
		for _, format := range []model.MemoryFormat{model.Contiguous, model.ChannelsLast} {
			t.Run(name+"/"+string(format), func(t *testing.T) {
				net, _ := build(t, spec, 21)
				require.NoError(t, net.SetMemoryFormat(format))
				s := net.Spec()
				torchrt.Seed(22)
				x, err := ts.Rand([]int64{4, int64(s.Input.Channels), int64(s.Input.Height), int64(s.Input.Width)}, gotch.Float, gotch.CPU)
				require.NoError(t, err)
				defer x.MustDrop()
				roughen(t, net, x)

				folded, err := net.Fold()
				require.NoError(t, err)
				wantZ, wantG := evalInputGrad(t, func(x *ts.Tensor) (*ts.Tensor, error) { return net.Forward(x, false) }, x)
				gotZ, gotG := evalInputGrad(t, folded.Forward, x)
				assert.Less(t, relDiff(wantZ, gotZ), 1e-4, "logits")
				assert.Less(t, l2RelDiff(wantG, gotG), 1e-2, "input gradient")
				if name == "micro" {
					// Stem, two per block (9 blocks), two projections.
					assert.Equal(t, 21, folded.Norms)
				}
				if name == "micro-preact" {
					// The norm between each block's two convs and the
					// projections; not the ones after sums.
					assert.Equal(t, 11, folded.Norms)
				}
				if format == model.ChannelsLast && name == "micro" {
					cl, err := lib.RobarchIsChannelsLast(model.FirstBlockConv(folded).Ctensor())
					require.NoError(t, err)
					assert.True(t, cl, "folded weights keep the net's format")
				}
				assert.PanicsWithValue(t, fmt.Sprintf("model: %s folded for evaluation cannot run in training mode", s.Name),
					func() { folded.ForwardT(x, true) })

				// The folded copy owns only its new tensors: the net
				// still runs after Close.
				folded.Close()
				z, _ := evalInputGrad(t, func(x *ts.Tensor) (*ts.Tensor, error) { return net.Forward(x, false) }, x)
				assert.Equal(t, wantZ, z)
			})
		}
	}
}

// Without folding the check above would be vacuous if the running
// statistics stayed at 0 and 1; make sure roughen moved them.
func TestRoughenMovesTheStatistics(t *testing.T) {
	spec, err := arch.Get("micro")
	require.NoError(t, err)
	net, _ := build(t, spec, 1)
	x, err := ts.Rand([]int64{4, 1, 28, 28}, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	defer x.MustDrop()
	roughen(t, net, x)
	moved := 0
	for _, v := range net.Vars() {
		if strings.HasSuffix(v.Name, "running_var") {
			vals := tensorValues(t, v.Tensor)
			if maxAbsDiff(vals, make([]float32, len(vals))) > 0 && vals[0] != 1 {
				moved++
			}
		}
	}
	assert.Equal(t, 21, moved)
}
