package train

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/attack"
)

// Training's inner maximisation is package attack's PGD step
// (attack.Ascent), the one every evaluation takes; what is training's
// own is its policy: which loss, which mode and precision the network
// runs in (the network handed in carries training's autocast), where the
// ascent starts, and which random stream the start draws from (the
// caller seeds libtorch's generator per shard and step).

// linf describes an L∞ inner maximisation: steps sign-gradient ascent
// steps of size step, each projected onto the eps-ball around x and the
// image range [0,1], from a uniform random start in the ball when
// randomStart.
type linf struct {
	eps, step   float64
	steps       int
	randomStart bool
	// train runs the network in training mode while attacking (batch norm
	// uses batch statistics), as Fast-AT's and PGD-AT's reference code do.
	train bool
}

func (a linf) ascent() attack.Ascent {
	return attack.Ascent{Norm: attack.Linf, Eps: a.eps, StepSize: a.step, Steps: a.steps}
}

// perturbCE returns adversarial inputs that maximise the summed
// cross-entropy of net on (x, y). Gradients are taken with respect to the
// perturbation only, so nothing accumulates in the parameters' gradients.
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
		logits, err := forwardClamped(net, xin, a.train)
		if err != nil {
			return nil, err
		}
		defer drop(logits)
		return logits.CrossEntropyLoss(y, ts.None, reductionSum, ignoreNone, 0, false)
	}
	var start *ts.Tensor
	var err error
	if a.randomStart {
		start, err = a.ascent().Start(x)
	} else {
		start, err = x.ZerosLike(false)
	}
	if err != nil {
		return nil, err
	}
	defer drop(start)
	return ascend(x, start, a, loss)
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
		logits, err := forwardClamped(net, xin, false)
		if err != nil {
			return nil, err
		}
		defer drop(logits)
		return klDiv(p, logp, logits, 1)
	}
	noise, err := x.RandnLike(false)
	if err != nil {
		return nil, fmt.Errorf("trades start: %w", err)
	}
	var sc scalars
	defer sc.drop()
	start, err := noise.MulScalar(sc.float(0.001), true)
	if err != nil {
		return nil, fmt.Errorf("trades start: %w", err)
	}
	defer drop(start)
	return ascend(x, start, a, loss)
}

// forwardClamped runs net on xin clamped to [0,1] inside the graph: a
// valid image for starts that Gaussian noise pushed outside [0,1]
// (TRADES); elsewhere a no-op whose gradient passes (the bounds are
// inclusive).
func forwardClamped(net ts.ModuleT, xin *ts.Tensor, train bool) (*ts.Tensor, error) {
	var sc scalars
	defer sc.drop()
	c, err := xin.Clamp(sc.float(0), sc.float(1), false)
	if err != nil {
		return nil, err
	}
	defer drop(c)
	return net.ForwardT(c, train), nil
}

// ascend runs training's ascent on loss from x+start and returns the last
// iterate x+delta, clamped to [0,1].
func ascend(x, start *ts.Tensor, a linf, loss attack.Objective) (*ts.Tensor, error) {
	delta, err := a.ascent().Run(x, start, loss)
	if err != nil {
		return nil, err
	}
	adv, err := x.Add(delta, false)
	drop(delta)
	if err != nil {
		return nil, err
	}
	var sc scalars
	defer sc.drop()
	return adv.Clamp(sc.float(0), sc.float(1), true)
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

// Reduction codes of libtorch's loss functions, and "no ignored class".
const (
	reductionMean = 1
	reductionSum  = 2
	ignoreNone    = -100
)
