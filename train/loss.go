package train

import (
	"fmt"
	"github.com/robarch/robarch/recipe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// batchLoss returns the recipe's training loss on one batch (with its
// autograd graph) and the logits whose accuracy training reports: those of
// the adversarial inputs for fgsm-rs, pgd and trades, of the clean inputs
// for standard training. The caller drops both.
func batchLoss(net ts.ModuleT, x, y *ts.Tensor, r recipe.Recipe) (loss, logits *ts.Tensor, err error) {
	switch r.Method {
	case recipe.Standard:
		logits = net.ForwardT(x, true)
	case recipe.FGSMRS, recipe.PGD:
		steps := r.Steps
		if r.Method == recipe.FGSMRS {
			steps = 1
		}
		adv, err := perturbCE(net, x, y, linf{eps: r.Eps, step: r.StepSize, steps: steps, randomStart: true, train: true})
		if err != nil {
			return nil, nil, fmt.Errorf("%s inner maximisation: %w", r.Method, err)
		}
		logits = net.ForwardT(adv, true)
		drop(adv)
	case recipe.TRADES:
		return tradesLoss(net, x, y, r)
	default:
		// Unreachable after recipe.Validate; kept so a new method cannot
		// silently train as standard.
		return nil, nil, fmt.Errorf("method %q: allowed values are %v", r.Method, recipe.Methods())
	}
	loss, err = logits.CrossEntropyLoss(y, ts.None, reductionMean, ignoreNone, r.LabelSmoothing, false)
	if err != nil {
		drop(logits)
		return nil, nil, fmt.Errorf("cross-entropy: %w", err)
	}
	return loss, logits, nil
}

// tradesLoss is CE(f(x), y) + β·KL(softmax f(x) ‖ softmax f(x'))/n with x'
// from perturbKL; gradients flow through both branches, as in TRADES.
func tradesLoss(net ts.ModuleT, x, y *ts.Tensor, r recipe.Recipe) (loss, advLogits *ts.Tensor, err error) {
	adv, err := perturbKL(net, x, linf{eps: r.Eps, step: r.StepSize, steps: r.Steps})
	if err != nil {
		return nil, nil, fmt.Errorf("trades inner maximisation: %w", err)
	}
	clean := net.ForwardT(x, true)
	advLogits = net.ForwardT(adv, true)
	drop(adv)
	var tmp []*ts.Tensor
	defer func() { drop(tmp...) }()
	tmp = append(tmp, clean)
	fail := func(err error) (*ts.Tensor, *ts.Tensor, error) {
		drop(advLogits)
		return nil, nil, fmt.Errorf("trades loss: %w", err)
	}
	ce, err := clean.CrossEntropyLoss(y, ts.None, reductionMean, ignoreNone, r.LabelSmoothing, false)
	if err != nil {
		return fail(err)
	}
	tmp = append(tmp, ce)
	p, err := clean.Softmax(1, gotch.Float, false)
	if err != nil {
		return fail(err)
	}
	tmp = append(tmp, p)
	logp, err := clean.LogSoftmax(1, gotch.Float, false)
	if err != nil {
		return fail(err)
	}
	tmp = append(tmp, logp)
	n, err := x.Size()
	if err != nil {
		return fail(err)
	}
	kl, err := klDiv(p, logp, advLogits, float64(n[0]))
	if err != nil {
		return fail(err)
	}
	beta := ts.FloatScalar(r.Beta)
	defer beta.Drop()
	weighted, err := kl.MulScalar(beta, true)
	if err != nil {
		return fail(err)
	}
	tmp = append(tmp, weighted)
	if loss, err = ce.Add(weighted, false); err != nil {
		return fail(err)
	}
	return loss, advLogits, nil
}
