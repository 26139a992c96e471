package attack

import (
	"errors"
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Attacks are long chains of tensor operations that fail only on bad
// inputs (a wrong shape, a model error). Threading an error through every
// operation would bury the algorithm, so inside the package a failed
// operation panics with a torchError and each exported entry point turns
// it back into an error with recoverTorch. gotch's Must* functions are
// never used: they call log.Fatal.
type torchError struct{ err error }

func (e torchError) Error() string { return e.err.Error() }

func must(t *ts.Tensor, err error) *ts.Tensor {
	if err != nil {
		panic(torchError{err})
	}
	return t
}

func check(err error) {
	if err != nil {
		panic(torchError{err})
	}
}

func fail(format string, args ...any) {
	panic(torchError{fmt.Errorf(format, args...)})
}

// recoverTorch, deferred by an entry point, turns a torchError panic into
// *errp prefixed with what. Other panics keep going.
func recoverTorch(errp *error, what string) {
	r := recover()
	if r == nil {
		return
	}
	var te torchError
	if e, ok := r.(error); ok && errors.As(e, &te) {
		*errp = fmt.Errorf("%s: %w", what, te.err)
		return
	}
	panic(r)
}

func drop(tensors ...*ts.Tensor) {
	for _, t := range tensors {
		if t != nil {
			_ = t.Drop()
		}
	}
}

// scope collects the temporaries of a computation so that one call frees
// them: GPU memory is invisible to Go's garbage collector, and even on the
// CPU finalizers run too late inside an attack's loop.
type scope struct{ held []*ts.Tensor }

// t keeps x (checking err) until free.
func (s *scope) t(x *ts.Tensor, err error) *ts.Tensor {
	x = must(x, err)
	s.held = append(s.held, x)
	return x
}

// keep holds x until free.
func (s *scope) keep(x *ts.Tensor) *ts.Tensor {
	s.held = append(s.held, x)
	return x
}

// t2 is t for operations that return two tensors.
func (s *scope) t2(a, b *ts.Tensor, err error) (*ts.Tensor, *ts.Tensor) {
	if err != nil {
		panic(torchError{err})
	}
	s.held = append(s.held, a, b)
	return a, b
}

func (s *scope) free() {
	drop(s.held...)
	s.held = s.held[:0]
}

// state is a tensor carried across iterations: set drops the old value.
type state struct{ t *ts.Tensor }

func (v *state) set(t *ts.Tensor, err error) {
	t = must(t, err)
	drop(v.t)
	v.t = t
}

func (v *state) free() { drop(v.t); v.t = nil }

func scalar(v float64) *ts.Scalar { return ts.FloatScalar(v) }

func size(t *ts.Tensor) []int64 {
	dims, err := t.Size()
	check(err)
	return dims
}

func device(t *ts.Tensor) gotch.Device {
	d, err := t.Device()
	check(err)
	return d
}

// rowShape is [n, 1, ..., 1] with rank dimensions: a per-sample value
// broadcast over an image batch.
func rowShape(n int64, rank int) []int64 {
	shape := make([]int64, rank)
	for i := range shape {
		shape[i] = 1
	}
	shape[0] = n
	return shape
}

// perSample views v [N] as [N, 1, 1, 1] (matching like's rank).
func (s *scope) perSample(v, like *ts.Tensor) *ts.Tensor {
	return s.t(v.Reshape(rowShape(size(like)[0], len(size(like))), false))
}

// flat views x [N, ...] as [N, D].
func (s *scope) flat(x *ts.Tensor) *ts.Tensor {
	return s.t(x.Reshape([]int64{size(x)[0], -1}, false))
}

// norms are the per-sample norms [N] of d [N, ...].
func (s *scope) norms(d *ts.Tensor, norm Norm) *ts.Tensor {
	f := s.flat(d)
	switch norm {
	case Linf:
		return s.t(s.t(f.Abs(false)).Amax([]int64{1}, false, false))
	case L2:
		sq := s.t(f.Square(false))
		return s.t(s.t(sq.SumDimIntlist([]int64{1}, false, d.DType(), false)).Sqrt(false))
	}
	fail("norm %q: want Linf or L2", norm)
	return nil
}

// unit scales every sample of d to norm 1 (d / (‖d‖ + 1e-12)).
func (s *scope) unit(d *ts.Tensor, norm Norm) *ts.Tensor {
	n := s.t(s.norms(d, norm).AddScalar(scalar(1e-12), false))
	return s.t(d.Div(s.perSample(n, d), false))
}

func (s *scope) clip01(x *ts.Tensor) *ts.Tensor {
	return s.t(x.Clamp(scalar(0), scalar(1), false))
}

// project maps p to the nearest point of the ε-ball around x (for L2,
// radial scaling, as AutoAttack does) and then into [0,1]; clipping to
// [0,1] moves every coordinate towards x, so the result stays in the ball.
func (s *scope) project(p, x *ts.Tensor, eps float64, norm Norm) *ts.Tensor {
	switch norm {
	case Linf:
		lo := s.t(x.AddScalar(scalar(-eps), false))
		hi := s.t(x.AddScalar(scalar(eps), false))
		return s.clip01(s.t(p.ClampTensor(lo, hi, false)))
	case L2:
		d := s.t(p.Sub(x, false))
		n := s.norms(d, L2)
		// factor = min(ε, ‖d‖) / (‖d‖ + 1e-12) ≤ 1
		f := s.t(s.t(n.ClampMax(scalar(eps), false)).Div(s.t(n.AddScalar(scalar(1e-12), false)), false))
		moved := s.t(d.Mul(s.perSample(f, d), false))
		return s.clip01(s.t(x.Add(moved, false)))
	}
	fail("norm %q: want Linf or L2", norm)
	return nil
}

// ball is the ε-ball around x with its L∞ bounds made once: attacks that
// project every iteration save two operations per projection.
type ball struct {
	x, lo, hi *ts.Tensor
	eps       float64
	norm      Norm
}

func newBall(x *ts.Tensor, eps float64, norm Norm) ball {
	b := ball{x: x, eps: eps, norm: norm}
	if norm == Linf {
		b.lo = must(x.AddScalar(scalar(-eps), false))
		b.hi = must(x.AddScalar(scalar(eps), false))
	}
	return b
}

func (b ball) free() { drop(b.lo, b.hi) }

// project is scope.project with the bounds made once.
func (b ball) project(s *scope, p *ts.Tensor) *ts.Tensor {
	if b.norm == Linf {
		return s.clip01(s.t(p.ClampTensor(b.lo, b.hi, false)))
	}
	return s.project(p, b.x, b.eps, b.norm)
}

// enforce is the last step of every attack: whatever the algorithm did,
// the result lies in the ε-ball around x and in [0,1]. It returns a tensor
// the caller owns.
func enforce(adv, x *ts.Tensor, eps float64, norm Norm) *ts.Tensor {
	var s scope
	defer s.free()
	p := s.project(adv, x, eps, norm)
	return must(p.Detach(false))
}

// where picks a where cond [N] holds and b elsewhere, per sample.
func (s *scope) where(cond, a, b *ts.Tensor) *ts.Tensor {
	c := cond
	if r := len(size(a)); r > 1 {
		c = s.t(cond.Reshape(rowShape(size(a)[0], r), false))
	}
	return s.t(a.WhereSelf(c, b, false))
}

// rows selects the samples idx [K] of x.
func (s *scope) rows(x, idx *ts.Tensor) *ts.Tensor {
	return s.t(x.IndexSelect(0, idx, false))
}

// nonzero returns the positions [K] where mask [N] holds, and K.
func (s *scope) nonzero(mask *ts.Tensor) (*ts.Tensor, int64) {
	nz := s.t(mask.Nonzero(false))
	idx := s.t(nz.Reshape([]int64{-1}, false))
	return idx, size(idx)[0]
}

// count is the number of true entries of a bool tensor.
func count(mask *ts.Tensor) int64 {
	n := must(mask.Sum(gotch.Int64, false))
	defer drop(n)
	return int64s(n)[0]
}

// floats copies t to the host as float64.
func floats(t *ts.Tensor) []float64 {
	c := must(t.ToDevice(gotch.CPU, gotch.Double, false, true, false))
	defer drop(c)
	out := make([]float64, c.Numel())
	if len(out) > 0 {
		check(c.CopyData(out, uint(len(out))))
	}
	return out
}

// int64s copies t to the host as int64.
func int64s(t *ts.Tensor) []int64 {
	c := must(t.ToDevice(gotch.CPU, gotch.Int64, false, true, false))
	defer drop(c)
	out := make([]int64, c.Numel())
	if len(out) > 0 {
		check(c.CopyData(out, uint(len(out))))
	}
	return out
}

// bools copies a bool (or 0/1) tensor to the host.
func bools(t *ts.Tensor) []bool {
	v := int64s(t)
	out := make([]bool, len(v))
	for i, x := range v {
		out[i] = x != 0
	}
	return out
}

// gradMode switches libtorch's (thread-local) grad mode. gotch's
// GradSetEnabled returns an unreliable previous state, so attacks set the
// mode they need rather than restore one.
func gradMode(on bool) {
	_, err := ts.GradSetEnabled(on)
	check(err)
}

// logits runs m on x without building a graph.
func logits(m Model, x *ts.Tensor) *ts.Tensor {
	gradMode(false)
	defer gradMode(true)
	z, err := m(x)
	if err != nil {
		panic(torchError{fmt.Errorf("model: %w", err)})
	}
	return z
}

// argmax is the predicted class [N] of logits z [N, classes].
func (s *scope) argmax(z *ts.Tensor) *ts.Tensor {
	return s.t(z.Argmax([]int64{1}, false, false))
}

// predict is the argmax class [N] of m on x.
func predict(m Model, x *ts.Tensor) *ts.Tensor {
	z := logits(m, x)
	defer drop(z)
	return must(z.Argmax([]int64{1}, false, false))
}

// correct says per sample whether m classifies x as y.
func correct(m Model, x, y *ts.Tensor) *ts.Tensor {
	p := predict(m, x)
	defer drop(p)
	return must(p.EqTensor(y, false))
}

// inputGrad evaluates m at x and returns the logits, the per-sample loss
// and the gradient of the summed loss with respect to x. The gradient
// comes from torch::autograd::grad with x as the only input, so the
// model's parameters get no .grad. All three are new tensors without
// history.
func inputGrad(m Model, x *ts.Tensor, loss lossFn) (z, l, g *ts.Tensor) {
	gradMode(true)
	var s scope
	defer s.free()
	// SetRequiresGrad rather than RequiresGrad_: gotch's in-place variant
	// swaps the handle and leaks the old one (and with it the storage).
	leaf := s.t(must(x.Detach(false)).SetRequiresGrad(true, true))
	zg, err := m(leaf)
	if err != nil {
		panic(torchError{fmt.Errorf("model: %w", err)})
	}
	s.held = append(s.held, zg)
	lg := loss(&s, zg)
	total := s.t(lg.Sum(lg.DType(), false))
	grads, err := ts.RunBackward([]*ts.Tensor{total}, []*ts.Tensor{leaf}, false, false)
	check(err)
	g = grads[0]
	return must(zg.Detach(false)), must(lg.Detach(false)), g
}

// uniformSigns is a tensor of shape dims with entries ±1, drawn as
// sign(2u − 1) from libtorch's CPU generator and moved to dev (as
// AutoAttack draws its random choices).
func (s *scope) uniformSigns(dims []int64, dev gotch.Device) *ts.Tensor {
	u := s.t(ts.Rand(dims, gotch.Float, gotch.CPU))
	v := s.t(s.t(u.MulScalar(scalar(2), false)).AddScalar(scalar(-1), false))
	return s.t(s.t(v.Sign(false)).To(dev, false))
}

// randInt draws an integer in [0, n) the way AutoAttack's Square does: one
// uniform from the CPU generator, scaled and truncated (0 when n = 0).
func randInt(n int) int {
	u := must(ts.Rand([]int64{1}, gotch.Float, gotch.CPU))
	defer drop(u)
	// The product is rounded to float32 like PyTorch's before truncation.
	return int(float32(n) * float32(floats(u)[0]))
}
