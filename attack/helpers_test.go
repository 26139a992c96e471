package attack

import (
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/torchrt"
)

// worker runs every test's torch work on one locked OS thread.
var worker *torchrt.Worker

func TestMain(m *testing.M) {
	worker = torchrt.NewWorker()
	code := m.Run()
	worker.Close()
	os.Exit(code)
}

// onTorch runs fn on the torch worker and fails the test on an error.
func onTorch(t *testing.T, fn func() error) {
	t.Helper()
	require.NoError(t, worker.Do(fn))
}

// tinyNet is conv(3→8, 3×3) → ReLU → 2×2 average pool → linear(128 →
// classes) on 3×8×8 images: small enough to train inside a test in a
// second, big enough for attacks to have something to fight.
type tinyNet struct {
	convW, convB, fcW, fcB *ts.Tensor
}

func (n *tinyNet) params() []*ts.Tensor { return []*ts.Tensor{n.convW, n.convB, n.fcW, n.fcB} }

func newTinyNet(classes int64) *tinyNet {
	p := func(std float64, dims ...int64) *ts.Tensor {
		r := ts.MustRandn(dims, gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(std), true)
		return r.MustSetRequiresGrad(true, true)
	}
	return &tinyNet{convW: p(0.3, 8, 3, 3, 3), convB: p(0.01, 8), fcW: p(0.1, classes, 128), fcB: p(0.01, classes)}
}

func (n *tinyNet) forward(x *ts.Tensor) (*ts.Tensor, error) {
	h, err := ts.Conv2d(x, n.convW, n.convB, []int64{1, 1}, []int64{1, 1}, []int64{1, 1}, 1)
	if err != nil {
		return nil, err
	}
	if h, err = h.Relu(true); err != nil {
		return nil, err
	}
	if h, err = h.AvgPool2d([]int64{2, 2}, []int64{2, 2}, []int64{0, 0}, false, true, nil, true); err != nil {
		return nil, err
	}
	if h, err = h.Flatten(1, -1, true); err != nil {
		return nil, err
	}
	out, err := ts.Linear(h, n.fcW, n.fcB)
	drop(h)
	return out, err
}

func (n *tinyNet) model() Model { return n.forward }

// gradSum is Σ|p.grad| over the parameters (0 when none has a gradient).
func (n *tinyNet) gradSum() float64 {
	var total float64
	for _, p := range n.params() {
		g := p.MustGrad(false)
		if g.MustDefined() {
			total += g.MustAbs(false).MustSum(gotch.Double, true).Float64Values()[0]
		}
		g.MustDrop()
	}
	return total
}

// synthetic makes n images of classes fixed random patterns (0.6 of the
// pixel value) plus uniform noise, labels cycling through the classes.
func synthetic(n, classes int64, patterns *ts.Tensor) (x, y *ts.Tensor) {
	y = ts.MustArange(ts.IntScalar(n), gotch.Int64, gotch.CPU).MustRemainder(ts.IntScalar(classes), true)
	p := patterns.MustIndexSelect(0, y, false).MustMulScalar(ts.FloatScalar(0.6), true)
	noise := ts.MustRand([]int64{n, 3, 8, 8}, gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(0.4), true)
	x = p.MustAdd(noise, true)
	noise.MustDrop()
	return x, y
}

// fixture is a trained tiny model and a held-out batch.
type fixture struct {
	net        *tinyNet
	x, y       *ts.Tensor
	classes    int64
	cleanRight int // test samples classified correctly
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[int64]*fixture{}
)

// trained returns a tiny model trained on synthetic data with the given
// number of classes (built once per class count), and 96 test samples.
func trained(t *testing.T, classes int64) *fixture {
	t.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f, ok := fixtures[classes]; ok {
		return f
	}
	f := &fixture{classes: classes}
	onTorch(t, func() error {
		torchrt.Seed(100 + classes)
		patterns := ts.MustRand([]int64{classes, 3, 8, 8}, gotch.Float, gotch.CPU)
		xTrain, yTrain := synthetic(2048, classes, patterns)
		f.x, f.y = synthetic(96, classes, patterns)
		f.net = newTinyNet(classes)
		const batch, lr = 64, 0.5
		for step := range 240 {
			start := int64(step*batch) % 2048
			xb := xTrain.MustNarrow(0, start, batch, false)
			yb := yTrain.MustNarrow(0, start, batch, false)
			logits, err := f.net.forward(xb)
			if err != nil {
				return err
			}
			loss := logits.MustCrossEntropyLoss(yb, ts.None, 1, -100, 0, true)
			if err := loss.Backward(); err != nil {
				return err
			}
			ts.NoGrad(func() {
				for _, p := range f.net.params() {
					g := p.MustGrad(false)
					p.MustSub_(g.MustMulScalar(ts.FloatScalar(lr), false))
					g.MustZero_()
					g.MustDrop()
				}
			})
			drop(xb, yb, loss)
		}
		drop(xTrain, yTrain, patterns)
		f.cleanRight = countRight(f.net.model(), f.x, f.y)
		return nil
	})
	fixtures[classes] = f
	return f
}

// countRight is the number of samples m classifies correctly.
func countRight(m Model, x, y *ts.Tensor) int {
	c := correct(m, x, y)
	defer drop(c)
	return int(count(c))
}

// perSampleNorms are ‖a − b‖ per sample on the host.
func perSampleNorms(a, b *ts.Tensor, norm Norm) []float64 {
	var s scope
	defer s.free()
	return floats(s.norms(s.t(a.Sub(b, false)), norm))
}

func maxAbsDiff(a, b *ts.Tensor) float64 {
	d := a.MustSub(b, false).MustAbs(true).MustMax(true)
	defer d.MustDrop()
	return d.Float64Values()[0]
}
