package model

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/internal/amp"
)

// TestActivationsInBF16AreFP32Rounded checks the activations computed in
// fp32 under bf16 (SiLU: faster; Mish: libtorch 1.13 has no bf16 CPU kernel,
// so a bf16 mish net failed in its first step; the parametric ones: their
// parameters are fp32) return a bf16 tensor holding the fp32 result
// rounded once.
func TestActivationsInBF16AreFP32Rounded(t *testing.T) {
	prelu, psilu, pssilu := testAct(t, arch.PReLU, 0.3), testAct(t, arch.PSiLU, 1.7), testAct(t, arch.PSSiLU, 0.8, 0.2)
	for _, tc := range []struct {
		name string
		a    act
		fp32 func(*ts.Tensor) *ts.Tensor
	}{
		{"silu", act{name: "silu"}, func(x *ts.Tensor) *ts.Tensor { return x.MustSilu(false) }},
		{"mish", act{name: "mish"}, func(x *ts.Tensor) *ts.Tensor { return x.MustMish(false) }},
		{"prelu", prelu, func(x *ts.Tensor) *ts.Tensor { return prelu.apply(x.MustShallowClone()) }},
		{"psilu", psilu, func(x *ts.Tensor) *ts.Tensor { return psilu.apply(x.MustShallowClone()) }},
		{"pssilu", pssilu, func(x *ts.Tensor) *ts.Tensor { return pssilu.apply(x.MustShallowClone()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xb, xf := bf16Input(t)
			y := inBF16Autocast(t, func() *ts.Tensor { return tc.a.apply(xb.MustShallowClone()) })
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

// testAct is an activation instance of kind name with its parameters
// (weight, or alpha and beta) set to vals.
func testAct(t *testing.T, name string, vals ...float64) act {
	t.Helper()
	param := func(v float64) *ts.Tensor {
		p, err := ts.NewTensorFromData([]float32{float32(v)}, []int64{1})
		require.NoError(t, err)
		p = p.MustSetRequiresGrad(true, true)
		t.Cleanup(func() { p.MustDrop() })
		return p
	}
	a := act{name: name}
	switch name {
	case arch.PReLU:
		a.w = param(vals[0])
	case arch.PSiLU:
		a.alpha = param(vals[0])
	case arch.PSSiLU:
		a.alpha, a.beta = param(vals[0]), param(vals[1])
	}
	return a
}

// The parametric activations compute RobArch's formulas: prelu's slope
// applies below 0 only, psilu is x·σ(αx), pssilu x·(σ(αx) − β)/(1 − β +
// 1e-6) with β clamped to [0,1] in place first (RobArch sets beta.data),
// so an out-of-range β is stored clamped after one forward pass.
func TestParametricActivationsFollowRobArch(t *testing.T) {
	xs := []float32{-3, -0.5, 0, 0.25, 2}
	x, err := ts.NewTensorFromData(xs, []int64{5})
	require.NoError(t, err)
	defer x.MustDrop()
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for _, tc := range []struct {
		a         act
		want      func(x float64) float64
		betaAfter float64
	}{
		{testAct(t, arch.PReLU, 0.25), func(x float64) float64 { return max(x, 0) + 0.25*min(x, 0) }, 0},
		{testAct(t, arch.PSiLU, 1.5), func(x float64) float64 { return x * sig(1.5*x) }, 0},
		{testAct(t, arch.PSSiLU, 0.7, 0.3), func(x float64) float64 { return x * (sig(0.7*x) - 0.3) / (1 - 0.3 + 1e-6) }, 0.3},
		{testAct(t, arch.PSSiLU, 0.7, -0.2), func(x float64) float64 { return x * sig(0.7*x) / (1 + 1e-6) }, 0},
		{testAct(t, arch.PSSiLU, 0.7, 1.5), func(x float64) float64 { return x * (sig(0.7*x) - 1) / 1e-6 }, 1},
	} {
		y := tc.a.apply(x.MustShallowClone())
		got := y.Float64Values()
		y.MustDrop()
		for i, v := range xs {
			want := tc.want(float64(v))
			assert.InDelta(t, want, got[i], 1e-6*max(1, math.Abs(want)), "%s(%v)", tc.a.name, v)
		}
		if tc.a.beta != nil {
			assert.InDelta(t, tc.betaAfter, tc.a.beta.Float64Values()[0], 1e-7, "beta clamped in place")
		}
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
