package amp_test

import (
	"errors"
	"math"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchrt"
)

func TestMain(m *testing.M) {
	torchrt.SetThreads(1) // the machine is shared
	os.Exit(m.Run())
}

// lock keeps the test on one OS thread (autocast and grad mode are C++
// thread-locals) and never unlocks, so the thread and its OpenMP pool end
// with the test.
func lock(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		p   amp.Precision
		dev gotch.Device
		err string
	}{
		{amp.FP32, gotch.CPU, ""},
		{amp.BF16, gotch.CPU, ""},
		{amp.FP16, gotch.CPU, "needs a CUDA device"},
		{amp.FP16, gotch.CudaBuilder(0), ""},
		{amp.FP16, gotch.Device{}, "needs a CUDA device"}, // gotch's zero Device is taken as the CPU
		{amp.Auto, gotch.CPU, "resolve it"},
	} {
		t.Run(string(tc.p)+"/"+tc.dev.Name, func(t *testing.T) {
			err := amp.Check(tc.p, tc.dev)
			if tc.err == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tc.err)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	cuda := gotch.CudaBuilder(0)
	for _, tc := range []struct {
		name string
		p    amp.Precision
		dev  gotch.Device
		h    amp.Hardware
		want amp.Precision
	}{
		{"cpu with avx512_bf16", amp.Auto, gotch.CPU, amp.Hardware{CPUBF16: true, CPUFlag: "avx512_bf16"}, amp.BF16},
		{"cpu without", amp.Auto, gotch.CPU, amp.Hardware{}, amp.FP32},
		{"ampere", amp.Auto, cuda, amp.Hardware{CUDAMajor: 8, CUDAMinor: 0}, amp.BF16},
		{"turing", amp.Auto, cuda, amp.Hardware{CUDAMajor: 7, CUDAMinor: 5}, amp.FP32},
		{"cuda unknown", amp.Auto, cuda, amp.Hardware{}, amp.FP32},
		{"asked stays", amp.FP16, cuda, amp.Hardware{}, amp.FP16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := amp.Resolve(tc.p, tc.dev, tc.h)
			assert.Equal(t, tc.want, got)
			assert.NotEmpty(t, why)
		})
	}
}

// bf16 without bf16 instructions is flagged (and only that): on the CPU
// without avx512_bf16/amx_bf16, never on CUDA, never for fp32.
func TestEmulated(t *testing.T) {
	cuda := gotch.CudaBuilder(0)
	withBF16 := amp.Hardware{CPUBF16: true, CPUFlag: "avx512_bf16"}
	for _, tc := range []struct {
		name string
		p    amp.Precision
		dev  gotch.Device
		h    amp.Hardware
		want bool
	}{
		{"bf16 on a cpu without", amp.BF16, gotch.CPU, amp.Hardware{}, true},
		{"bf16 on a cpu with", amp.BF16, gotch.CPU, withBF16, false},
		{"fp32 on a cpu without", amp.FP32, gotch.CPU, amp.Hardware{}, false},
		{"bf16 on cuda", amp.BF16, cuda, amp.Hardware{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why := amp.Emulated(tc.p, tc.dev, tc.h)
			assert.Equal(t, tc.want, why != "", why)
			if tc.want {
				assert.Contains(t, why, "auto")
			}
			// auto never resolves to an emulated precision.
			got, _ := amp.Resolve(amp.Auto, tc.dev, tc.h)
			assert.Empty(t, amp.Emulated(got, tc.dev, tc.h))
		})
	}
}

// Some of this project's machines have AVX512-BF16, some do not; the detection
// must agree with /proc/cpuinfo.
func TestDetectCPUAgreesWithCPUInfo(t *testing.T) {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip("no /proc/cpuinfo")
	}
	h := amp.DetectCPU()
	want := amp.HasCPUFlag(string(b), "avx512_bf16") || amp.HasCPUFlag(string(b), "amx_bf16")
	assert.Equal(t, want, h.CPUBF16, "flag %q", h.CPUFlag)
}

func TestDoScopesNestAndRestore(t *testing.T) {
	lock(t)
	require.False(t, amp.Enabled(gotch.CPU))
	require.Equal(t, 0, amp.Depth())
	err := amp.Do(gotch.CPU, amp.BF16, func() error {
		assert.True(t, amp.Enabled(gotch.CPU))
		assert.Equal(t, 1, amp.Depth())
		return amp.Do(gotch.CPU, amp.BF16, func() error {
			assert.Equal(t, 2, amp.Depth())
			return nil
		})
	})
	require.NoError(t, err)
	assert.False(t, amp.Enabled(gotch.CPU))
	assert.Equal(t, 0, amp.Depth())

	// fp32 is no scope at all.
	require.NoError(t, amp.Do(gotch.CPU, amp.FP32, func() error {
		assert.False(t, amp.Enabled(gotch.CPU))
		return nil
	}))

	// An error and a panic inside close the scope too.
	boom := errors.New("boom")
	assert.ErrorIs(t, amp.Do(gotch.CPU, amp.BF16, func() error { return boom }), boom)
	assert.Equal(t, 0, amp.Depth())
	assert.Panics(t, func() {
		_ = amp.Do(gotch.CPU, amp.BF16, func() error { panic("forward failed") })
	})
	assert.False(t, amp.Enabled(gotch.CPU))
	assert.Equal(t, 0, amp.Depth())

	assert.ErrorContains(t, amp.Do(gotch.CPU, amp.FP16, func() error { return nil }), "needs a CUDA device")
}

func randn(t *testing.T, dims ...int64) *ts.Tensor {
	t.Helper()
	x, err := ts.Randn(dims, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Drop() })
	return x
}

func leaf(t *testing.T, dims ...int64) *ts.Tensor {
	t.Helper()
	w := randn(t, dims...)
	l, err := w.SetRequiresGrad(true, false)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Drop() })
	return l
}

func dtype(t *testing.T, x *ts.Tensor) gotch.DType {
	t.Helper()
	d, err := amp.DTypeOf(x)
	require.NoError(t, err)
	return d
}

func values(t *testing.T, x *ts.Tensor) []float64 {
	t.Helper()
	d, err := x.Totype(gotch.Double, false)
	require.NoError(t, err)
	defer d.Drop()
	return d.Float64Values()
}

func conv(t *testing.T, x, w *ts.Tensor) *ts.Tensor {
	t.Helper()
	y, err := ts.Conv2d(x, w, ts.None, []int64{1, 1}, []int64{1, 1}, []int64{1, 1}, 1)
	require.NoError(t, err)
	t.Cleanup(func() { _ = y.Drop() })
	return y
}

// Under autocast, CPU convolutions and matmuls run in bfloat16; additions
// (the perturbation's x+δ) and clamps stay in fp32.
func TestAutocastDTypes(t *testing.T) {
	lock(t)
	x := randn(t, 2, 3, 8, 8)
	w := leaf(t, 4, 3, 3, 3)
	m := randn(t, 16, 16)
	assert.Equal(t, gotch.Float, dtype(t, conv(t, x, w)), "outside autocast")
	require.NoError(t, amp.Do(gotch.CPU, amp.BF16, func() error {
		assert.Equal(t, gotch.BFloat16, dtype(t, conv(t, x, w)), "conv")
		mm, err := m.Mm(m, false)
		require.NoError(t, err)
		defer mm.Drop()
		assert.Equal(t, gotch.BFloat16, dtype(t, mm), "mm")
		sum, err := x.Add(x, false)
		require.NoError(t, err)
		defer sum.Drop()
		assert.Equal(t, gotch.Float, dtype(t, sum), "add")
		return nil
	}))
}

// The cast cache holds a weight's bf16 copy for the whole outermost scope,
// keyed by tensor identity: a weight changed in place inside a scope is
// still seen with its old value (why the training step ends its scope
// before the optimiser's update), and a new scope casts it afresh.
func TestCastCacheIsClearedWhenTheOutermostScopeEnds(t *testing.T) {
	lock(t)
	x := randn(t, 2, 3, 8, 8)
	w := leaf(t, 4, 3, 3, 3)
	double := func() {
		sc := ts.FloatScalar(2)
		defer sc.MustDrop()
		ts.NoGrad(func() { require.NoError(t, w.MulScalar_(sc)) })
	}
	var before, stale, nested []float64
	require.NoError(t, amp.Do(gotch.CPU, amp.BF16, func() error {
		before = values(t, conv(t, x, w))
		double()
		stale = values(t, conv(t, x, w))
		// A nested scope ending does not clear the outer scope's cache.
		require.NoError(t, amp.Do(gotch.CPU, amp.BF16, func() error { return nil }))
		nested = values(t, conv(t, x, w))
		return nil
	}))
	assert.Equal(t, before, stale, "inside one scope the cached cast is reused")
	assert.Equal(t, before, nested)
	var fresh []float64
	require.NoError(t, amp.Do(gotch.CPU, amp.BF16, func() error {
		fresh = values(t, conv(t, x, w))
		return nil
	}))
	require.Len(t, fresh, len(before))
	for i := range fresh {
		// bf16 has an 8-bit mantissa; doubling is exact in it.
		assert.InDelta(t, 2*before[i], fresh[i], 1e-6+0.02*math.Abs(before[i]), "element %d", i)
	}

	// ClearCache drops it inside a scope too.
	require.NoError(t, amp.Do(gotch.CPU, amp.BF16, func() error {
		a := values(t, conv(t, x, w))
		double()
		amp.ClearCache()
		b := values(t, conv(t, x, w))
		assert.InDelta(t, 2*a[0], b[0], 1e-6+0.02*math.Abs(a[0]))
		return nil
	}))
}

// mlp is a matmul-heavy two-layer net: linear → ReLU → linear.
type mlp struct{ w1, b1, w2, b2 *ts.Tensor }

func (m mlp) ForwardT(x *ts.Tensor, _ bool) *ts.Tensor {
	h := ts.MustLinear(x, m.w1, m.b1)
	h = h.MustRelu(true)
	out := ts.MustLinear(h, m.w2, m.b2)
	h.MustDrop()
	return out
}

func (m mlp) params() []*ts.Tensor { return []*ts.Tensor{m.w1, m.b1, m.w2, m.b2} }

func newMLP(t *testing.T) mlp {
	t.Helper()
	scale := func(x *ts.Tensor, s float64) *ts.Tensor {
		sc := ts.FloatScalar(s)
		defer sc.MustDrop()
		y, err := x.MulScalar(sc, false)
		require.NoError(t, err)
		l, err := y.SetRequiresGrad(true, true)
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Drop() })
		return l
	}
	return mlp{
		w1: scale(randn(t, 256, 64), 1/8.0), b1: scale(randn(t, 256), 0.1),
		w2: scale(randn(t, 10, 256), 1/16.0), b2: scale(randn(t, 10), 0.1),
	}
}

func lossAndGrads(t *testing.T, net ts.ModuleT, params []*ts.Tensor, x, y *ts.Tensor) (float64, [][]float64, []gotch.DType) {
	t.Helper()
	logits := net.ForwardT(x, true)
	defer logits.Drop()
	assert.Equal(t, gotch.Float, dtype(t, logits), "the wrapper hands back fp32 logits")
	loss, err := logits.CrossEntropyLoss(y, ts.None, 1, -100, 0, false)
	require.NoError(t, err)
	defer loss.Drop()
	require.NoError(t, loss.Backward())
	var grads [][]float64
	var types []gotch.DType
	for _, p := range params {
		g, err := p.Grad(false)
		require.NoError(t, err)
		ok, err := g.Defined()
		require.NoError(t, err)
		require.True(t, ok, "gradient reached the fp32 weight")
		types = append(types, dtype(t, g))
		grads = append(grads, values(t, g))
		ts.NoGrad(func() { err = g.Zero_() })
		require.NoError(t, err)
		_ = g.Drop()
	}
	return values(t, loss)[0], grads, types
}

// A wrapped net's loss and gradients are within bf16's rounding of fp32's,
// and the gradients land, in fp32, on the fp32 master weights.
func TestModuleLossAndGradientsNearFP32(t *testing.T) {
	lock(t)
	torchrt.Seed(1)
	net := newMLP(t)
	x := randn(t, 128, 64)
	yf, err := ts.Randint(10, []int64{128}, gotch.Int64, gotch.CPU)
	require.NoError(t, err)
	defer yf.Drop()

	l32, g32, _ := lossAndGrads(t, net, net.params(), x, yf)
	wrapped, err := amp.Wrap(net, gotch.CPU, amp.BF16)
	require.NoError(t, err)
	assert.Equal(t, amp.BF16, amp.PrecisionOf(wrapped))
	l16, g16, types := lossAndGrads(t, wrapped, net.params(), x, yf)

	assert.InEpsilon(t, l32, l16, 1e-2, "loss")
	for i := range g32 {
		assert.Equal(t, gotch.Float, types[i], "param %d gradient dtype", i)
		// bf16 keeps 8 significant bits (relative rounding 2^-9); the
		// gradients pass through several rounded products: a few percent.
		e := relL2(g32[i], g16[i])
		t.Logf("param %d: relative L2 gradient difference bf16 vs fp32 %.4f", i, e)
		assert.Less(t, e, 0.08, "param %d gradient", i)
	}
	assert.Equal(t, 0, amp.Depth(), "every forward closed its scope")

	same, err := amp.Wrap(net, gotch.CPU, amp.FP32)
	require.NoError(t, err)
	assert.Equal(t, amp.FP32, amp.PrecisionOf(same), "fp32 does not wrap")
}

func relL2(a, b []float64) float64 {
	var d, n float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		n += a[i] * a[i]
	}
	return math.Sqrt(d / n)
}

func ptrs(ps []*ts.Tensor) []unsafe.Pointer {
	out := make([]unsafe.Pointer, len(ps))
	for i, p := range ps {
		out[i] = p.Ctensor()
	}
	return out
}

// The scaler's arithmetic runs on CPU fp32 gradients (its fused kernel is
// CUDA's; the fallback is the same computation): finite gradients are
// divided by the scale, an inf skips the step, drops the gradients and
// halves the scale, and enough good steps double it.
func TestScaler(t *testing.T) {
	lock(t)
	for _, tc := range []struct {
		name    string
		poison  float64 // added to one gradient element
		ok      bool
		scale   float64
		skipped int
	}{
		{"finite", 0, true, 1024, 0},
		{"inf", math.Inf(1), false, 512, 1},
		{"nan", math.NaN(), false, 512, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := amp.NewScaler()
			s.Scale = 1024
			net := newMLP(t)
			x := randn(t, 8, 64)
			logits := net.ForwardT(x, true)
			loss, err := logits.Sum(gotch.Float, true)
			require.NoError(t, err)
			scaled, err := s.ScaleLoss(loss)
			require.NoError(t, err)
			require.NoError(t, scaled.Backward())
			_ = scaled.Drop()
			_ = loss.Drop()
			g, err := net.b2.Grad(false)
			require.NoError(t, err)
			before := values(t, g)
			if tc.poison != 0 || math.IsNaN(tc.poison) {
				p := ts.FloatScalar(tc.poison)
				ts.NoGrad(func() { require.NoError(t, g.AddScalar_(p)) })
				p.MustDrop()
			}
			_ = g.Drop()
			ok, err := s.Unscale(ptrs(net.params()))
			require.NoError(t, err)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.scale, s.Scale)
			assert.Equal(t, tc.skipped, s.Skipped)
			g, err = net.b2.Grad(false)
			require.NoError(t, err)
			defined, err := g.Defined()
			require.NoError(t, err)
			if !tc.ok {
				assert.False(t, defined, "a skipped step's gradients are dropped")
				return
			}
			after := values(t, g)
			_ = g.Drop()
			for i := range after {
				assert.InDelta(t, before[i]/1024, after[i], 1e-9)
			}
		})
	}

	s := amp.NewScaler()
	s.GrowthInterval = 3
	net := newMLP(t)
	for range 3 {
		ok, err := s.Unscale(ptrs(net.params())) // no gradients: finite
		require.NoError(t, err)
		assert.True(t, ok)
	}
	assert.Equal(t, 131072.0, s.Scale, "doubled after GrowthInterval good steps")
}

// fp16 autocast needs CUDA; this runs where there is one (make gpu-check).
func TestFP16OnCUDA(t *testing.T) {
	if torchrt.CUDADevices() == 0 {
		t.Skip("no CUDA device")
	}
	lock(t)
	dev := gotch.CudaBuilder(0)
	x, err := ts.Randn([]int64{4, 3, 8, 8}, gotch.Float, dev)
	require.NoError(t, err)
	defer x.Drop()
	w0, err := ts.Randn([]int64{4, 3, 3, 3}, gotch.Float, dev)
	require.NoError(t, err)
	w, err := w0.SetRequiresGrad(true, true)
	require.NoError(t, err)
	defer w.Drop()
	for _, p := range []amp.Precision{amp.FP16, amp.BF16} {
		require.NoError(t, amp.Do(dev, p, func() error {
			assert.Equal(t, amp.DType(p), dtype(t, conv(t, x, w)), "%s conv on CUDA", p)
			return nil
		}))
	}
}
