package train

import (
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// lockThread keeps the test's torch calls on one OS thread (grad mode and
// gotch's error slot are thread-local).
func lockThread(t *testing.T) { lockThreadB(t) }

// lockThreadB never unlocks: the thread ends with the test's goroutine,
// and libgomp frees the thread pool it started for that thread. Pools
// otherwise pile up, one per thread that ran torch work, and once libgomp
// manages more threads than there are cores every barrier sleeps instead
// of spinning (micro's SGD step: 1.67 ms after the training-step
// benchmark in the same process, 0.35-0.40 ms alone).
func lockThreadB(testing.TB) { runtime.LockOSThread() }

// linearProblem is a VarStore with a 2×2 weight, a 2-vector bias and a
// buffer, and the loss Σ W⊙A + Σ b⊙B whose gradients are exactly A and B.
type linearProblem struct {
	vs     *nn.VarStore
	w, b   *ts.Tensor
	buffer *ts.Tensor
	a, bb  []float32
}

func newLinearProblem(t *testing.T) *linearProblem {
	vs := nn.NewVarStore(gotch.CPU)
	root := vs.Root()
	w, err := root.Sub("layer").Add("weight", ts.MustOfSlice([]float32{1, 2, 3, 4}).MustView([]int64{2, 2}, true), true)
	require.NoError(t, err)
	b, err := root.Sub("layer").Add("bias", ts.MustOfSlice([]float32{0.5, -0.5}), true)
	require.NoError(t, err)
	buf, err := root.Sub("norm").ZerosNoTrain("running_mean", []int64{2})
	require.NoError(t, err)
	return &linearProblem{vs: vs, w: w, b: b, buffer: buf, a: []float32{1, -1, 2, 0.5}, bb: []float32{3, -2}}
}

func (p *linearProblem) backward(t *testing.T) {
	a := ts.MustOfSlice(p.a).MustView([]int64{2, 2}, true)
	bb := ts.MustOfSlice(p.bb)
	loss := p.w.MustMul(a, false).MustSum(gotch.Float, true).MustAdd(p.b.MustMul(bb, false).MustSum(gotch.Float, true), true)
	require.NoError(t, loss.Backward())
	drop(a, bb, loss)
}

// reference is the update rule written out on Go floats.
func reference(cfg SGDConfig, w, b, a, bb []float64, lrs []float64) ([]float64, []float64) {
	w, b = append([]float64(nil), w...), append([]float64(nil), b...)
	bufW, bufB := make([]float64, len(w)), make([]float64, len(b))
	for _, lr := range lrs {
		scale := 1.0
		if cfg.GradClip > 0 {
			var s float64
			for _, g := range append(append([]float64(nil), a...), bb...) {
				s += g * g
			}
			if n := math.Sqrt(s); n > cfg.GradClip {
				scale = cfg.GradClip / (n + 1e-6)
			}
		}
		upd := func(p, g, buf []float64, decay bool) {
			for i := range p {
				d := g[i] * scale
				if decay {
					d += cfg.WeightDecay * p[i]
				}
				if cfg.Momentum > 0 {
					buf[i] = cfg.Momentum*buf[i] + d
					if cfg.Nesterov {
						d += cfg.Momentum * buf[i]
					} else {
						d = buf[i]
					}
				}
				p[i] -= lr * d
			}
		}
		upd(w, a, bufW, true)
		upd(b, bb, bufB, false) // 1-D: no weight decay
	}
	return w, b
}

func TestSGDMatchesHandComputedUpdates(t *testing.T) {
	lockThread(t)
	lrs := []float64{0.1, 0.05, 0.2}
	for _, tc := range []struct {
		name string
		cfg  SGDConfig
	}{
		{"plain", SGDConfig{}},
		{"momentum", SGDConfig{Momentum: 0.9}},
		{"nesterov and weight decay", SGDConfig{Momentum: 0.9, Nesterov: true, WeightDecay: 0.1}},
		{"weight decay only", SGDConfig{WeightDecay: 0.5}},
		{"gradient clipping", SGDConfig{Momentum: 0.5, GradClip: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lockThread(t)
			p := newLinearProblem(t)
			opt, err := NewSGD(p.vs, tc.cfg)
			require.NoError(t, err)
			defer opt.Close()
			for _, lr := range lrs {
				p.backward(t)
				norm, err := opt.Step(lr)
				require.NoError(t, err)
				if tc.cfg.GradClip > 0 {
					assert.InDelta(t, math.Sqrt(19.25), norm, 1e-5)
				}
				g, err := p.w.Grad(false)
				require.NoError(t, err)
				defined, err := g.Defined()
				require.NoError(t, err)
				assert.False(t, defined, "gradient cleared (set to none) after the step")
				require.NoError(t, g.Drop())
			}
			wantW, wantB := reference(tc.cfg, []float64{1, 2, 3, 4}, []float64{0.5, -0.5}, f64(p.a), f64(p.bb), lrs)
			assert.InDeltaSlice(t, wantW, p.w.Float64Values(), 1e-5)
			assert.InDeltaSlice(t, wantB, p.b.Float64Values(), 1e-5)
			assert.Equal(t, []float64{0, 0}, p.buffer.Float64Values(), "buffers are not parameters")
		})
	}
}

func TestSGDStateRoundTrip(t *testing.T) {
	lockThread(t)
	p := newLinearProblem(t)
	cfg := SGDConfig{Momentum: 0.9}
	opt, err := NewSGD(p.vs, cfg)
	require.NoError(t, err)
	defer opt.Close()
	p.backward(t)
	_, err = opt.Step(0.1)
	require.NoError(t, err)

	state := opt.State()
	require.Len(t, state, 2)
	saved := map[string]*ts.Tensor{}
	for _, nt := range state {
		saved[nt.Name] = nt.Tensor
	}
	assert.Contains(t, saved, MomentumPrefix+"layer.weight")
	assert.Equal(t, []float64{1, -1, 2, 0.5}, saved[MomentumPrefix+"layer.weight"].Float64Values())

	fresh, err := NewSGD(p.vs, cfg)
	require.NoError(t, err)
	defer fresh.Close()
	require.NoError(t, fresh.LoadState(saved))
	assert.Equal(t, []float64{3, -2}, fresh.State()[0].Tensor.Float64Values()) // layer.bias sorts first

	delete(saved, MomentumPrefix+"layer.bias")
	assert.ErrorContains(t, fresh.LoadState(saved), "sgd.momentum.layer.bias missing")
}

func f64(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}
