package attack

import (
	"fmt"

	"github.com/sugarme/gotch/ts"
)

// Ascent is projected gradient ascent on a caller's objective in an ε-ball
// around x: the one PGD step robarch has. PGD (every evaluation) runs it
// on a model's loss, and package train runs it for its inner maximisation
// (PGD-AT's and Fast-AT's cross-entropy in training mode, TRADES's KL
// divergence from its own start). Each step is
//
//	delta ← clip_[0,1](x + Π_ε(delta + α·dir(∇_delta objective(x + delta)))) − x
//
// with dir the gradient's sign (L∞) or the gradient scaled to unit L2 norm
// (L2), and Π_ε the clamp to [−ε, ε] (L∞) or the radial scaling onto the
// L2 ball. Ascent keeps no best point: Run returns the last iterate.
type Ascent struct {
	Norm     Norm    // Linf (default) or L2
	Eps      float64 // radius of the ball
	StepSize float64 // α
	Steps    int     // gradient steps (0 returns the start)
}

// Objective is what an Ascent maximises: a scalar computed from the input
// xin = x + delta (for a batch, the sum of the per-sample losses), with
// xin's autograd history. The objective chooses everything about the
// model's pass: evaluation or training mode, autocast, a clamp of xin. It
// must neither free xin nor keep it; Run frees the result.
type Objective func(xin *ts.Tensor) (*ts.Tensor, error)

func (a Ascent) norm() Norm {
	if a.Norm == "" {
		return Linf
	}
	return a.Norm
}

// Start is a random starting perturbation: uniform in the L∞ ball, or a
// random direction at a uniform radius of the L2 ball, cut so that x +
// delta lies in [0,1]. It draws from libtorch's generator as it stands:
// the caller seeds it (PGD does unless KeepRNG; training keys a stream per
// shard and step).
func (a Ascent) Start(x *ts.Tensor) (delta *ts.Tensor, err error) {
	defer recoverTorch(&err, "random start")
	return a.start(x), nil
}

func (a Ascent) start(x *ts.Tensor) *ts.Tensor {
	var s scope
	defer s.free()
	var d *ts.Tensor
	if a.norm() == Linf {
		// u ∈ [0,1) → 2εu − ε ∈ [−ε, ε)
		u := s.t(x.RandLike(false))
		d = s.t(s.t(u.MulScalar(scalar(2*a.Eps), false)).AddScalar(scalar(-a.Eps), false))
	} else {
		dir := s.unit(s.t(x.RandnLike(false)), L2)
		r := s.t(ts.Rand([]int64{size(x)[0]}, x.DType(), device(x)))
		d = s.t(dir.Mul(s.perSample(s.t(r.MulScalar(scalar(a.Eps), false)), dir), false))
	}
	return must(s.clip01(s.t(x.Add(d, false))).Sub(x, false))
}

// Run takes Steps steps from x + start and returns the last perturbation
// delta: a new tensor without autograd history, which the caller owns (x
// and start stay the caller's). The gradient is taken with respect to
// delta alone (torch::autograd::grad), so nothing accumulates in a
// model's parameters. Run leaves libtorch's grad mode on.
func (a Ascent) Run(x, start *ts.Tensor, objective Objective) (delta *ts.Tensor, err error) {
	if err := a.validate(); err != nil {
		return nil, fmt.Errorf("ascent: %w", err)
	}
	defer recoverTorch(&err, "ascent")
	return a.run(x, start, objective), nil
}

func (a Ascent) run(x, start *ts.Tensor, objective Objective) *ts.Tensor {
	gradMode(true)
	var delta state
	defer delta.free()
	delta.set(start.Detach(false))
	for k := range a.Steps {
		delta.set(a.step(x, delta.t, objective, k))
	}
	d := delta.t
	delta.t = nil
	return d
}

// step is one ascent step from delta (left to the caller).
func (a Ascent) step(x, delta *ts.Tensor, objective Objective, k int) (*ts.Tensor, error) {
	var s scope
	defer s.free()
	// SetRequiresGrad rather than RequiresGrad_: gotch's in-place variant
	// swaps the handle and leaks the old one (and with it the storage).
	leaf := s.t(must(delta.Detach(false)).SetRequiresGrad(true, true))
	xin := s.t(x.Add(leaf, false))
	l, err := objective(xin)
	if err != nil {
		fail("step %d: objective: %w", k+1, err)
	}
	s.held = append(s.held, l)
	grads, err := ts.RunBackward([]*ts.Tensor{l}, []*ts.Tensor{leaf}, false, false)
	if err != nil {
		fail("step %d: gradient: %w", k+1, err)
	}
	g := s.keep(grads[0])
	var dir *ts.Tensor
	if a.norm() == Linf {
		dir = s.t(g.Sign(false))
	} else {
		dir = s.unit(g, L2)
	}
	base := s.t(leaf.Detach(false))
	moved := s.t(base.Add(s.t(dir.MulScalar(scalar(a.StepSize), false)), false))
	var inBall *ts.Tensor
	if a.norm() == Linf {
		inBall = s.t(moved.Clamp(scalar(-a.Eps), scalar(a.Eps), false))
	} else {
		n := s.norms(moved, L2)
		f := s.t(s.t(s.t(n.AddScalar(scalar(1e-12), false)).Reciprocal(false)).MulScalar(scalar(a.Eps), false))
		inBall = s.t(moved.Mul(s.perSample(s.t(f.ClampMax(scalar(1), false)), moved), false))
	}
	return s.clip01(s.t(x.Add(inBall, false))).Sub(x, false)
}

// validate reports the first bad field.
func (a Ascent) validate() error {
	if err := a.norm().validate(); err != nil {
		return err
	}
	if err := validateEps(a.Eps); err != nil {
		return err
	}
	if !(a.StepSize > 0) {
		return fmt.Errorf("StepSize %v: want a positive step", a.StepSize)
	}
	if a.Steps < 0 {
		return fmt.Errorf("Steps %d: want at least 0", a.Steps)
	}
	return nil
}
