package attack

import (
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/attackname"
)

// PGD is projected gradient ascent (Madry et al. 2018) on a loss, in an L∞
// ball (signed-gradient steps) or an L2 ball (normalised-gradient steps).
// Each step is delta ← clip_[0,1](x + Π_ε(delta + α·dir(∇))) − x (an
// Ascent on the summed loss, the step training's inner maximisation takes
// too), and the last iterate is returned: plain PGD, so that it equals a
// straightforward PyTorch PGD from the same start.
type PGD struct {
	Norm  Norm    // Linf (default) or L2
	Eps   float64 // radius of the ball
	Steps int     // gradient steps, at least 1
	// StepSize α; 0 means 2.5·Eps/Steps.
	StepSize float64
	// Restarts runs the attack this many times (0 means once) and keeps,
	// per sample, the first run that fooled the model, else the run with
	// the highest final loss.
	Restarts int
	// RandomStart starts from a uniform point of the L∞ ball, or from a
	// random direction at a uniform radius of the L2 ball; otherwise at x.
	RandomStart bool
	Loss        Loss // CE (default), CW or DLR
	Seed        int64
	// KeepRNG leaves libtorch's generator alone (training loops); otherwise
	// Perturb seeds it with Seed first.
	KeepRNG bool

	name string // set by attacks built on PGD (fgsm)
}

func (p PGD) withDefaults() PGD {
	if p.Norm == "" {
		p.Norm = Linf
	}
	if p.Loss == "" {
		p.Loss = CE
	}
	if p.StepSize == 0 && p.Steps > 0 {
		p.StepSize = 2.5 * p.Eps / float64(p.Steps)
	}
	if p.Restarts == 0 {
		p.Restarts = 1
	}
	return p
}

// Validate reports the first bad field.
func (p PGD) Validate() error {
	p = p.withDefaults()
	if err := p.Norm.validate(); err != nil {
		return fmt.Errorf("pgd: %w", err)
	}
	if err := validateEps(p.Eps); err != nil {
		return fmt.Errorf("pgd: %w", err)
	}
	if p.Steps < 1 {
		return fmt.Errorf("pgd: Steps %d: want at least 1", p.Steps)
	}
	if !(p.StepSize > 0) {
		return fmt.Errorf("pgd: StepSize %v: want a positive step (0 means 2.5·Eps/Steps)", p.StepSize)
	}
	if p.Restarts < 1 {
		return fmt.Errorf("pgd: Restarts %d: want at least 1 (0 means 1)", p.Restarts)
	}
	if err := p.Loss.validate(); err != nil {
		return fmt.Errorf("pgd: %w", err)
	}
	return nil
}

// Name is pgdK, with the loss appended when it is not cross-entropy
// (pgd20-cw).
func (p PGD) Name() string {
	p = p.withDefaults()
	if p.name != "" {
		return p.name
	}
	return attackname.Name{Kind: attackname.PGD, Steps: p.Steps, Loss: string(p.Loss)}.String()
}

// Perturb implements Attack.
func (p PGD) Perturb(m Model, x, y *ts.Tensor) (adv *ts.Tensor, err error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.withDefaults()
	defer recoverTorch(&err, p.Name())
	reseed(p.Seed, p.KeepRNG)
	loss := lossFor(p.Loss, y)
	best := p.run(m, x, loss)
	if p.Restarts == 1 {
		defer drop(best)
		return enforce(best, x, p.Eps, p.Norm), nil
	}
	var bestAdv, bestLoss, fooled state
	defer bestAdv.free()
	defer bestLoss.free()
	defer fooled.free()
	bestAdv.t = best
	bestLoss.t, fooled.t = p.score(m, best, y, loss)
	for range p.Restarts - 1 {
		cand := p.run(m, x, loss)
		l, f := p.score(m, cand, y, loss)
		var s scope
		// Take the candidate where it fools and the best so far does not,
		// or neither fools and its loss is higher.
		better := s.t(l.GtTensor(bestLoss.t, false))
		neither := s.t(s.t(f.LogicalOr(fooled.t, false)).LogicalNot(false))
		take := s.t(s.t(f.LogicalAnd(s.t(fooled.t.LogicalNot(false)), false)).LogicalOr(s.t(neither.LogicalAnd(better, false)), false))
		bestAdv.set(s.where(take, cand, bestAdv.t).Detach(false))
		bestLoss.set(s.where(take, l, bestLoss.t).Detach(false))
		fooled.set(f.LogicalOr(fooled.t, false))
		s.free()
		drop(cand, l, f)
	}
	return enforce(bestAdv.t, x, p.Eps, p.Norm), nil
}

// ascent is the step p takes.
func (p PGD) ascent() Ascent {
	return Ascent{Norm: p.Norm, Eps: p.Eps, StepSize: p.StepSize, Steps: p.Steps}
}

// run is one PGD run from a fresh start (random or x itself); it returns
// x + delta.
func (p PGD) run(m Model, x *ts.Tensor, loss lossFn) *ts.Tensor {
	a := p.ascent()
	var start *ts.Tensor
	if p.RandomStart {
		start = a.start(x)
	} else {
		start = must(x.ZerosLike(false))
	}
	defer drop(start)
	delta := a.run(x, start, modelObjective(m, loss))
	defer drop(delta)
	return must(x.Add(delta, false))
}

// modelObjective is the summed per-sample loss of m's logits.
func modelObjective(m Model, loss lossFn) Objective {
	return func(xin *ts.Tensor) (*ts.Tensor, error) {
		var s scope
		defer s.free()
		z, err := m(xin)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		s.held = append(s.held, z)
		l := loss(&s, z)
		return l.Sum(l.DType(), false)
	}
}

// score is the per-sample loss and whether the model is fooled at adv.
func (p PGD) score(m Model, adv, y *ts.Tensor, loss lossFn) (l, fooled *ts.Tensor) {
	var s scope
	defer s.free()
	z := logits(m, adv)
	s.held = append(s.held, z)
	l = must(loss(&s, z).Detach(false))
	pred := s.t(z.Argmax([]int64{1}, false, false))
	return l, must(pred.NeTensor(y, false))
}

// FGSM is the fast gradient sign method (Goodfellow et al. 2015): one step
// of size Eps from x along the sign of the loss gradient (L∞), or along
// the normalised gradient (L2).
type FGSM struct {
	Norm Norm // Linf (default) or L2
	Eps  float64
	Loss Loss // CE (default), CW or DLR
}

// Name implements Attack.
func (f FGSM) Name() string { return string(attackname.FGSM) }

func (f FGSM) pgd() PGD {
	return PGD{Norm: f.Norm, Eps: f.Eps, Steps: 1, StepSize: f.Eps, Loss: f.Loss, KeepRNG: true, name: f.Name()}
}

// Validate reports the first bad field.
func (f FGSM) Validate() error {
	f.Norm, f.Loss = f.pgd().withDefaults().Norm, f.pgd().withDefaults().Loss
	if err := f.Norm.validate(); err != nil {
		return fmt.Errorf("fgsm: %w", err)
	}
	if err := validateEps(f.Eps); err != nil {
		return fmt.Errorf("fgsm: %w", err)
	}
	if err := f.Loss.validate(); err != nil {
		return fmt.Errorf("fgsm: %w", err)
	}
	return nil
}

// Perturb implements Attack.
func (f FGSM) Perturb(m Model, x, y *ts.Tensor) (*ts.Tensor, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f.pgd().Perturb(m, x, y)
}
