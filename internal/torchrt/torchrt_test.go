package torchrt_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/torchrt"
)

func TestMain(m *testing.M) {
	// gotch makes its cache folder at init; keep tests out of $HOME.
	os.Exit(m.Run())
}

func TestThreads(t *testing.T) {
	old := torchrt.Threads()
	defer torchrt.SetThreads(old)
	torchrt.SetThreads(2)
	assert.Equal(t, 2, torchrt.Threads())
	torchrt.SetThreads(1)
	assert.Equal(t, 1, torchrt.Threads())
}

func TestBuildInfo(t *testing.T) {
	b, err := torchrt.Build()
	require.NoError(t, err)
	assert.NotEmpty(t, b.Libtorch.Version)
	assert.Equal(t, "v0.9.1", b.GotchVersion)
}

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr bool
	}{
		{"cpu", false}, {"", false}, {"CPU", false},
		{"gpu", true}, {"cuda:x", true}, {"cuda:-1", true},
	} {
		d, err := torchrt.ParseDevice(tc.in)
		if tc.wantErr {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, gotch.CPU, d)
	}
	if torchrt.CUDADevices() == 0 {
		_, err := torchrt.ParseDevice("cuda")
		assert.ErrorContains(t, err, "sees 0 CUDA device")
	}
}

func TestWorkerTurnsPanicIntoError(t *testing.T) {
	w := torchrt.NewWorker()
	defer w.Close()
	err := w.Do(func() error { var x *ts.Tensor; _ = x.MustSize(); return nil })
	assert.ErrorContains(t, err, "panicked")
	assert.NoError(t, w.Do(func() error { return nil }))
}

// tinyNet is conv(1→2, 3×3) → tanh → spatial mean → linear(2→3), with raw
// float64 parameters so finite differences are accurate.
type tinyNet struct{ convW, convB, fcW, fcB *ts.Tensor }

func newTinyNet(dtype gotch.DType) *tinyNet {
	p := func(dims ...int64) *ts.Tensor {
		return ts.MustRandn(dims, dtype, gotch.CPU).MustSetRequiresGrad(true, true)
	}
	return &tinyNet{convW: p(2, 1, 3, 3), convB: p(2), fcW: p(3, 2), fcB: p(3)}
}

func (n *tinyNet) logits(x *ts.Tensor) *ts.Tensor {
	h := ts.MustConv2d(x, n.convW, n.convB, []int64{1, 1}, []int64{1, 1}, []int64{1, 1}, 1)
	h = h.MustTanh(true).MustMeanDim([]int64{2, 3}, false, x.DType(), true)
	return ts.MustLinear(h, n.fcW, n.fcB)
}

func (n *tinyNet) loss(x, y *ts.Tensor) *ts.Tensor { return n.logits(x).CrossEntropyForLogits(y) }

func TestConvNetGradientsMatchFiniteDifferences(t *testing.T) {
	w := torchrt.NewWorker()
	defer w.Close()
	require.NoError(t, w.Do(func() error {
		torchrt.Seed(7)
		net := newTinyNet(gotch.Double)
		x := ts.MustRandn([]int64{4, 1, 6, 6}, gotch.Double, gotch.CPU)
		y := ts.MustOfSlice([]int64{0, 1, 2, 1})

		loss := net.loss(x, y)
		require.NoError(t, loss.Backward())
		analytic := net.convW.MustGrad(false).Float64Values()
		flat := net.convW.MustDetach(false).MustView([]int64{-1}, false) // shares storage

		const h = 1e-6
		for _, i := range []int{0, 4, 9, 17} {
			orig := flat.Float64Values()[i]
			var plus, minus float64
			ts.NoGrad(func() {
				flat.MustGet(i).MustFill_(ts.FloatScalar(orig + h))
				plus = net.loss(x, y).Float64Values()[0]
				flat.MustGet(i).MustFill_(ts.FloatScalar(orig - h))
				minus = net.loss(x, y).Float64Values()[0]
				flat.MustGet(i).MustFill_(ts.FloatScalar(orig))
			})
			numeric := (plus - minus) / (2 * h)
			assert.InDelta(t, numeric, analytic[i], 1e-6, "coordinate %d", i)
			assert.NotZero(t, analytic[i], "coordinate %d", i)
		}
		return nil
	}))
}

func TestSameSeedSameNumbers(t *testing.T) {
	w := torchrt.NewWorker()
	defer w.Close()
	run := func() (vals []float64) {
		require.NoError(t, w.Do(func() error {
			torchrt.Seed(42)
			net := newTinyNet(gotch.Float)
			x := ts.MustRand([]int64{2, 1, 6, 6}, gotch.Float, gotch.CPU)
			vals = net.logits(x).Float64Values()
			return nil
		}))
		return vals
	}
	a, b := run(), run()
	assert.Equal(t, a, b)
	assert.Len(t, a, 6)
}

func TestSeedMatchesPyTorch(t *testing.T) {
	// torch.manual_seed(42); torch.rand(3) in PyTorch 1.13 gives these
	// (checked with Debian's python3-torch on the same libtorch).
	w := torchrt.NewWorker()
	defer w.Close()
	require.NoError(t, w.Do(func() error {
		torchrt.Seed(42)
		got := ts.MustRand([]int64{3}, gotch.Float, gotch.CPU).Float64Values()
		assert.InDeltaSlice(t, []float64{0.8823, 0.9150, 0.3829}, got, 1e-4)
		return nil
	}))
}

// gotch's generated ops leak a small output block each, and its in-place
// ops a tensor handle each, unless torchbuild's patch is applied: 20,000
// of each would leave about 1.3 MB behind.
func TestOpsDoNotLeakCMemory(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := ts.MustOnes([]int64{16}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	churn := func(n int) {
		for range n {
			y := x.MustAdd(x, false)
			y.MustDrop()
			x.MustRelu_()
		}
	}
	churn(1000) // warm up libtorch's and malloc's own caches
	before := torchrt.MallocInUse()
	churn(20000)
	grown := torchrt.MallocInUse() - before
	assert.Less(t, grown, int64(128<<10), "C memory grew by %d bytes over 20,000 ops and 20,000 in-place ops", grown)
}
