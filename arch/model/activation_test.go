package model

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TestSiLUInBF16IsFP32Rounded checks silu on a bf16 tensor (what autocast
// hands it) returns a bf16 tensor holding fp32 SiLU rounded once, and that
// its input gradient is fp32 SiLU's derivative to bf16 precision.
func TestSiLUInBF16IsFP32Rounded(t *testing.T) {
	x32 := ts.MustRandn([]int64{4, 8, 5, 5}, gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(4), true) // values across SiLU's curved range
	defer x32.MustDrop()
	xb := x32.MustTotype(gotch.BFloat16, false)
	defer xb.MustDrop()
	leaf := xb.MustSetRequiresGrad(true, false)
	defer leaf.MustDrop()

	y := silu(leaf.MustShallowClone())
	defer y.MustDrop()
	require.Equal(t, gotch.BFloat16, y.DType())

	// The reference: fp32 SiLU of the same bf16 values, rounded to bf16.
	xf := xb.MustTotype(gotch.Float, false)
	defer xf.MustDrop()
	ref := xf.MustSilu(false).MustTotype(gotch.BFloat16, true).MustTotype(gotch.Float, true)
	defer ref.MustDrop()
	got := y.MustTotype(gotch.Float, false)
	defer got.MustDrop()
	require.Equal(t, ref.Float64Values(), got.Float64Values())

	loss := y.MustTotype(gotch.Float, false).MustSum(gotch.Float, true)
	defer loss.MustDrop()
	g, err := ts.RunBackward([]*ts.Tensor{loss}, []*ts.Tensor{leaf}, false, false)
	require.NoError(t, err)
	defer g[0].MustDrop()
	require.Equal(t, gotch.BFloat16, g[0].DType())
	// SiLU'(x) = σ(x)(1 + x(1 − σ(x))).
	sig := xf.MustSigmoid(false)
	defer sig.MustDrop()
	want := sig.MustMul(xf.MustMul(sig.MustNeg(false).MustAddScalar(ts.FloatScalar(1), true), true).MustAddScalar(ts.FloatScalar(1), true), false)
	defer want.MustDrop()
	gf := g[0].MustTotype(gotch.Float, false)
	defer gf.MustDrop()
	w, gv := want.Float64Values(), gf.Float64Values()
	for i := range w {
		require.InDelta(t, w[i], gv[i], 1e-2*(1+math.Abs(w[i])), "element %d", i)
	}
}

// TestMishTrainsInBF16 checks mish accepts a bf16 tensor (libtorch 1.13 has
// no bf16 CPU Mish kernel, so a bf16 mish net failed in its first step) and
// returns fp32 Mish rounded once.
func TestMishTrainsInBF16(t *testing.T) {
	x := ts.MustRandn([]int64{2, 4, 3, 3}, gotch.Float, gotch.CPU).MustTotype(gotch.BFloat16, true)
	defer x.MustDrop()
	y := mish(x.MustShallowClone())
	defer y.MustDrop()
	require.Equal(t, gotch.BFloat16, y.DType())
	xf := x.MustTotype(gotch.Float, false)
	defer xf.MustDrop()
	ref := xf.MustMish(false).MustTotype(gotch.BFloat16, true).MustTotype(gotch.Float, true)
	defer ref.MustDrop()
	got := y.MustTotype(gotch.Float, false)
	defer got.MustDrop()
	require.Equal(t, ref.Float64Values(), got.Float64Values())
}
