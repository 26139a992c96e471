package model

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/amp"
)

// TestActivationsInBF16AreFP32Rounded checks the activations computed in
// fp32 under bf16 (SiLU: faster; Mish: libtorch 1.13 has no bf16 CPU kernel,
// so a bf16 mish net failed in its first step) return a bf16 tensor holding
// the fp32 result rounded once.
func TestActivationsInBF16AreFP32Rounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		fp32 func(*ts.Tensor) *ts.Tensor
	}{
		{"silu", func(x *ts.Tensor) *ts.Tensor { return x.MustSilu(false) }},
		{"mish", func(x *ts.Tensor) *ts.Tensor { return x.MustMish(false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xb, xf := bf16Input(t)
			y := inBF16Autocast(t, func() *ts.Tensor { return activation(tc.name, xb.MustShallowClone()) })
			defer y.MustDrop()
			require.Equal(t, gotch.BFloat16, y.DType())
			ref := tc.fp32(xf).MustTotype(gotch.BFloat16, true).MustTotype(gotch.Float, true)
			defer ref.MustDrop()
			got := y.MustTotype(gotch.Float, false)
			defer got.MustDrop()
			require.Equal(t, ref.Float64Values(), got.Float64Values())
		})
	}
}

// TestSiLUInBF16HasSiLUsGradient checks the input gradient through the
// fp32 detour is SiLU's derivative to bf16 precision (the backward pass
// runs outside autocast, as in training).
func TestSiLUInBF16HasSiLUsGradient(t *testing.T) {
	xb, xf := bf16Input(t)
	leaf := xb.MustSetRequiresGrad(true, false)
	defer leaf.MustDrop()
	y := inBF16Autocast(t, func() *ts.Tensor { return activation("silu", leaf.MustShallowClone()) })
	defer y.MustDrop()
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

// inBF16Autocast runs f under CPU bf16 autocast, where a net's bf16
// activations are applied (torchbuild's autocast kernels for SiLU and Mish).
func inBF16Autocast(t *testing.T, f func() *ts.Tensor) *ts.Tensor {
	var y *ts.Tensor
	require.NoError(t, amp.Do(gotch.CPU, amp.BF16, func() error { y = f(); return nil }))
	return y
}

// bf16Input is a random bf16 tensor spanning the activations' curved range,
// and the same values in fp32.
func bf16Input(t *testing.T) (xb, xf *ts.Tensor) {
	x := ts.MustRandn([]int64{4, 8, 5, 5}, gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(4), true)
	xb = x.MustTotype(gotch.BFloat16, true)
	xf = xb.MustTotype(gotch.Float, false)
	t.Cleanup(func() { xb.MustDrop(); xf.MustDrop() })
	return xb, xf
}
