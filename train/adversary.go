package train

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// linf describes an L∞ attack: steps sign-gradient ascent steps of size
// step, each projected onto the eps-ball around x and the image range
// [0,1], from a uniform random start in the ball when randomStart.
type linf struct {
	eps, step   float64
	steps       int
	randomStart bool
	// train runs the network in training mode while attacking (batch norm
	// uses batch statistics), as Fast-AT's and PGD-AT's reference code do.
	train bool
}

// perturbCE returns adversarial inputs that maximise the cross-entropy of
// net on (x, y). Gradients are taken with respect to the perturbation only
// (autograd.grad), so nothing accumulates in the parameters' gradients.
// The result has no autograd history; the caller drops it.
func perturbCE(net ts.ModuleT, x, y *ts.Tensor, a linf) (*ts.Tensor, error) {
	if !a.train {
		m, release, err := EvalModule(net)
		if err != nil {
			return nil, err
		}
		defer release()
		net = m
	}
	loss := func(xin *ts.Tensor) (*ts.Tensor, error) {
		logits := net.ForwardT(xin, a.train)
		defer drop(logits)
		return logits.CrossEntropyLoss(y, ts.None, reductionSum, ignoreNone, 0, false)
	}
	delta, err := startDelta(x, a)
	if err != nil {
		return nil, err
	}
	return ascend(x, delta, a, loss)
}

// perturbKL returns TRADES's adversarial inputs: those that maximise
// KL(p ‖ softmax(net(x'))) where p are the clean probabilities, starting
// from x plus a small Gaussian (0.001·N(0,1)), network in evaluation mode
// as in the TRADES reference code.
func perturbKL(net ts.ModuleT, x *ts.Tensor, a linf) (*ts.Tensor, error) {
	net, release, err := EvalModule(net)
	if err != nil {
		return nil, err
	}
	defer release()
	var p, logp *ts.Tensor
	ts.NoGrad(func() {
		logits := net.ForwardT(x, false)
		defer drop(logits)
		if p, err = logits.Softmax(1, gotch.Float, false); err != nil {
			return
		}
		logp, err = logits.LogSoftmax(1, gotch.Float, false)
	})
	if err != nil {
		drop(p, logp)
		return nil, fmt.Errorf("trades clean probabilities: %w", err)
	}
	defer drop(p, logp)
	loss := func(xin *ts.Tensor) (*ts.Tensor, error) {
		logits := net.ForwardT(xin, false)
		defer drop(logits)
		return klDiv(p, logp, logits, 1)
	}
	noise, err := x.RandnLike(false)
	if err != nil {
		return nil, fmt.Errorf("trades start: %w", err)
	}
	var sc scalars
	defer sc.drop()
	delta, err := noise.MulScalar(sc.float(0.001), true)
	if err != nil {
		return nil, fmt.Errorf("trades start: %w", err)
	}
	a.randomStart = false
	return ascend(x, delta, a, loss)
}

// klDiv returns Σ p·(log p − log_softmax(logits)) / n: the KL divergence
// from the fixed distribution p to softmax(logits), summed over classes
// and divided by n (1 for a sum over the batch, the batch size for
// TRADES's "batchmean").
func klDiv(p, logp, logits *ts.Tensor, n float64) (*ts.Tensor, error) {
	logq, err := logits.LogSoftmax(1, gotch.Float, false)
	if err != nil {
		return nil, err
	}
	diff, err := logp.Sub(logq, false)
	drop(logq)
	if err != nil {
		return nil, err
	}
	prod, err := p.Mul(diff, false)
	drop(diff)
	if err != nil {
		return nil, err
	}
	sum, err := prod.Sum(gotch.Float, true)
	if err != nil || n == 1 {
		return sum, err
	}
	var sc scalars
	defer sc.drop()
	return sum.DivScalar(sc.float(n), true)
}

// startDelta is the attack's starting perturbation: uniform in
// [-eps, eps] and cut back so that x+delta stays in [0,1], or zero.
func startDelta(x *ts.Tensor, a linf) (*ts.Tensor, error) {
	if !a.randomStart {
		return x.ZerosLike(false)
	}
	var sc scalars
	defer sc.drop()
	u, err := x.RandLike(false)
	if err != nil {
		return nil, fmt.Errorf("random start: %w", err)
	}
	// u ∈ [0,1) → 2·eps·u − eps ∈ [-eps, eps)
	d, err := u.MulScalar(sc.float(2*a.eps), true)
	if err != nil {
		return nil, err
	}
	if d, err = d.AddScalar(sc.float(-a.eps), true); err != nil {
		return nil, err
	}
	return clipToImage(x, d)
}

// clipToImage returns clamp(x+d, 0, 1) − x, consuming d.
func clipToImage(x, d *ts.Tensor) (*ts.Tensor, error) {
	var sc scalars
	defer sc.drop()
	xd, err := x.Add(d, false)
	drop(d)
	if err != nil {
		return nil, err
	}
	if xd, err = xd.Clamp(sc.float(0), sc.float(1), true); err != nil {
		return nil, err
	}
	return xd.Sub(x, true)
}

// ascend runs a.steps projected sign-gradient ascent steps on loss from
// x+delta (consuming delta) and returns x+delta, clamped to [0,1].
func ascend(x, delta *ts.Tensor, a linf, loss func(*ts.Tensor) (*ts.Tensor, error)) (*ts.Tensor, error) {
	var sc scalars
	defer sc.drop()
	s := stepScalars{lo: sc.float(-a.eps), hi: sc.float(a.eps), step: sc.float(a.step), zero: sc.float(0), one: sc.float(1)}
	for k := range a.steps {
		next, err := ascendOnce(x, delta, loss, s)
		if err != nil {
			return nil, fmt.Errorf("attack step %d: %w", k+1, err)
		}
		delta = next
	}
	adv, err := x.Add(delta, false)
	drop(delta)
	if err != nil {
		return nil, err
	}
	return adv.Clamp(s.zero, s.one, true)
}

// stepScalars are the constants of one attack, made once.
type stepScalars struct{ lo, hi, step, zero, one *ts.Scalar }

// ascendOnce takes one step from delta (consumed) and returns the new
// perturbation: clip_image(clamp(delta + step·sign(∇), lo, hi)).
func ascendOnce(x, delta *ts.Tensor, loss func(*ts.Tensor) (*ts.Tensor, error), s stepScalars) (*ts.Tensor, error) {
	leaf, err := delta.SetRequiresGrad(true, true)
	if err != nil {
		return nil, err
	}
	defer drop(leaf)
	xin, err := x.Add(leaf, false)
	if err != nil {
		return nil, err
	}
	// Clamping inside the graph keeps the loss's input a valid image for
	// starts that Gaussian noise pushed outside [0,1] (TRADES); elsewhere
	// it is a no-op whose gradient passes (the bounds are inclusive).
	if xin, err = xin.Clamp(s.zero, s.one, true); err != nil {
		return nil, err
	}
	l, err := loss(xin)
	drop(xin)
	if err != nil {
		return nil, fmt.Errorf("attack loss: %w", err)
	}
	grads, err := ts.RunBackward([]*ts.Tensor{l}, []*ts.Tensor{leaf}, false, false)
	drop(l)
	if err != nil {
		return nil, fmt.Errorf("attack gradient: %w", err)
	}
	sign, err := grads[0].Sign(true)
	if err != nil {
		return nil, err
	}
	move, err := sign.MulScalar(s.step, true)
	if err != nil {
		return nil, err
	}
	base, err := leaf.Detach(false)
	if err != nil {
		drop(move)
		return nil, err
	}
	next, err := base.Add(move, true)
	drop(move)
	if err != nil {
		return nil, err
	}
	if next, err = next.Clamp(s.lo, s.hi, true); err != nil {
		return nil, err
	}
	return clipToImage(x, next)
}

// Reduction codes of libtorch's loss functions, and "no ignored class".
const (
	reductionMean = 1
	reductionSum  = 2
	ignoreNone    = -100
)
