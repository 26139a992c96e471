package attack

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/attackname"
)

// APGD is Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial
// robustness with an ensemble of diverse parameter-free attacks"): PGD with
// momentum 0.75 whose step size starts at 2ε and halves at checkpoints
// where the loss oscillated (it rose in at most ρ of the steps since the
// last checkpoint) or where the step was not halved last time and the best
// loss has not improved since. A halving restarts from the best point. The
// attack returns, per sample, a point the model misclassified if any
// iterate was one, and only attacks samples still classified correctly.
//
// APGD-CE uses the cross-entropy; APGD-T (Targeted) runs once per target
// class, the t-th most likely classes for t = 2, ..., Targets+1, on the
// targeted DLR loss.
type APGD struct {
	Norm  Norm    // Linf (default) or L2
	Eps   float64 // radius of the ball
	Steps int     // iterations per run; 0 means 100
	// Restarts per run (per target class for APGD-T) from a new random
	// point; 0 means 1.
	Restarts int
	// Loss is CE (default) or DLR for the untargeted attack; APGD-T always
	// uses the targeted DLR loss.
	Loss     Loss
	Targeted bool
	// Targets is APGD-T's number of target classes; 0 means 9. Models
	// with fewer classes use classes − 1.
	Targets int
	// Rho is the oscillation threshold ρ; 0 means 0.75.
	Rho     float64
	Seed    int64
	KeepRNG bool
}

func (a APGD) withDefaults() APGD {
	if a.Norm == "" {
		a.Norm = Linf
	}
	if a.Steps == 0 {
		a.Steps = 100
	}
	if a.Restarts == 0 {
		a.Restarts = 1
	}
	if a.Loss == "" {
		a.Loss = CE
	}
	if a.Targets == 0 {
		a.Targets = 9
	}
	if a.Rho == 0 {
		a.Rho = 0.75
	}
	return a
}

// Name is apgd-ce, apgd-dlr or apgd-t.
func (a APGD) Name() string {
	a = a.withDefaults()
	switch {
	case a.Targeted:
		return string(attackname.APGDT)
	case a.Loss == CE:
		return string(attackname.APGDCE)
	case a.Loss == DLR:
		return string(attackname.APGDDLR)
	}
	return "apgd-" + string(a.Loss) // an invalid APGD, named in its errors
}

// Validate reports the first bad field.
func (a APGD) Validate() error {
	a = a.withDefaults()
	if err := a.Norm.validate(); err != nil {
		return fmt.Errorf("%s: %w", a.Name(), err)
	}
	if err := validateEps(a.Eps); err != nil {
		return fmt.Errorf("%s: %w", a.Name(), err)
	}
	switch {
	case a.Steps < 1:
		return fmt.Errorf("%s: Steps %d: want at least 1 (0 means 100)", a.Name(), a.Steps)
	case a.Restarts < 1:
		return fmt.Errorf("%s: Restarts %d: want at least 1 (0 means 1)", a.Name(), a.Restarts)
	case a.Targets < 1:
		return fmt.Errorf("%s: Targets %d: want at least 1 (0 means 9)", a.Name(), a.Targets)
	case !(a.Rho > 0 && a.Rho <= 1):
		return fmt.Errorf("%s: Rho %v: want 0 < Rho <= 1 (0 means 0.75)", a.Name(), a.Rho)
	}
	if !a.Targeted && a.Loss != CE && a.Loss != DLR {
		return fmt.Errorf("%s: Loss %q: want %q or %q", a.Name(), a.Loss, CE, DLR)
	}
	return nil
}

// targetCount is the number of target classes a targeted attack can use
// on a model with the given number of classes.
func targetCount(want int, classes int64) int {
	return int(min(int64(want), max(classes-1, 0)))
}

// Perturb implements Attack.
func (a APGD) Perturb(m Model, x, y *ts.Tensor) (adv *ts.Tensor, err error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	a = a.withDefaults()
	defer recoverTorch(&err, a.Name())
	reseed(a.Seed, a.KeepRNG)

	var best, robust state
	defer best.free()
	defer robust.free()
	best.set(x.Detach(false))
	robust.t = correct(m, x, y)

	// Each run attacks the samples still classified correctly.
	attackRobust := func(target int) {
		var s scope
		defer s.free()
		idx, k := s.nonzero(robust.t)
		if k == 0 {
			return
		}
		xs, ys := s.rows(x, idx), s.rows(y, idx)
		var loss lossFn
		if target == 0 {
			loss = lossFor(a.Loss, ys)
		} else {
			z := logits(m, xs)
			s.held = append(s.held, z)
			_, order := s.t2(z.Sort(1, false, false))
			t := s.t(order.Select(1, classes(z)-int64(target), false))
			loss = targetedDLRLoss(ys, t)
		}
		found, fooled := a.run(m, xs, ys, loss)
		s.held = append(s.held, found, fooled)
		fidx, nf := s.nonzero(fooled)
		if nf == 0 {
			return
		}
		at := s.rows(idx, fidx)
		best.set(best.t.IndexCopy(0, at, s.rows(found, fidx), false))
		falses := s.t(ts.Zeros([]int64{nf}, gotch.Bool, device(x)))
		robust.set(robust.t.IndexCopy(0, at, falses, false))
	}
	if a.Targeted {
		z := logits(m, x)
		n := targetCount(a.Targets, classes(z))
		drop(z)
		for target := 2; target <= n+1; target++ {
			for range a.Restarts {
				attackRobust(target)
			}
		}
	} else {
		for range a.Restarts {
			attackRobust(0)
		}
	}
	return enforce(best.t, x, a.Eps, a.Norm), nil
}

// checkpoint is an APGD step-size check: after iteration At (counting
// from 1), looking back over the last Window iterations.
type checkpoint struct{ At, Window int }

// apgdCheckpoints are the iterations at which APGD checks its step size:
// p_0 = 0, p_1 = 0.22 and p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)
// as fractions of the iterations, rounded down as in the reference code.
func apgdCheckpoints(steps int) []checkpoint {
	k := max(int(0.22*float64(steps)), 1)
	kMin := max(int(0.06*float64(steps)), 1)
	dec := max(int(0.03*float64(steps)), 1)
	var out []checkpoint
	for at := k; at <= steps; at += k {
		out = append(out, checkpoint{At: at, Window: k})
		k = max(k-dec, kMin)
	}
	return out
}

// sphereStart is a random first point: x moved onto the norm sphere of the
// given radius and clipped to [0,1], without history. The direction is
// drawn on the CPU generator, as the reference does (APGD's start at ε,
// FAB's at ε/2), so that seeds mean the same on every device.
func sphereStart(x *ts.Tensor, norm Norm, radius float64) *ts.Tensor {
	var s scope
	defer s.free()
	var t *ts.Tensor
	if norm == Linf {
		u := s.t(ts.Rand(size(x), gotch.Float, gotch.CPU))
		t = s.t(s.t(u.MulScalar(scalar(2), false)).AddScalar(scalar(-1), false))
	} else {
		t = s.t(ts.Randn(size(x), gotch.Float, gotch.CPU))
	}
	t = s.t(s.t(t.To(device(x), false)).Totype(x.DType(), false))
	d := s.t(s.unit(t, norm).MulScalar(scalar(radius), false))
	return must(s.clip01(s.t(x.Add(d, false))).Detach(false))
}

// run is one APGD run on samples x with labels y: it returns the last
// misclassified iterate of every sample (its start point if none was) and
// whether one was found.
func (a APGD) run(m Model, x, y *ts.Tensor, loss lossFn) (found, fooled *ts.Tensor) {
	n := size(x)[0]
	dev := device(x)
	var xAdv, xOld, grad, xBest, gBest, lBest, xFound, robust, step, rises, lPrev, reduced, lBestLast state
	defer func() {
		for _, v := range []*state{&xAdv, &xOld, &grad, &xBest, &gBest, &lBest, &robust, &step, &rises, &lPrev, &reduced, &lBestLast} {
			v.free()
		}
	}()

	xAdv.set(sphereStart(x, a.Norm, a.Eps), nil)
	{
		var s scope
		z, l, g := inputGrad(m, xAdv.t, loss)
		s.held = append(s.held, z)
		grad.t, lBest.t = g, l
		robust.t = must(s.argmax(z).EqTensor(y, false))
		s.free()
	}
	xFound.set(xAdv.t.Detach(false))
	xBest.set(xAdv.t.Detach(false))
	xOld.set(xAdv.t.Detach(false))
	gBest.set(grad.t.Detach(false))
	lBestLast.set(lBest.t.Detach(false))
	step.set(ts.Full(rowShape(n, len(size(x))), scalar(2*a.Eps), x.DType(), dev))
	rises.set(ts.Zeros([]int64{n}, x.DType(), dev))
	lPrev.set(ts.Zeros([]int64{n}, x.DType(), dev)) // the reference compares the first loss with 0
	reduced.set(ts.Ones([]int64{n}, gotch.Bool, dev))

	bl := newBall(x, a.Eps, a.Norm)
	defer bl.free()
	checks := apgdCheckpoints(a.Steps)
	next := 0
	for i := range a.Steps {
		var s scope
		// Step with momentum: z = P(x + η·dir(∇)); x' = P(x + α(z − x) + (1−α)(x − x_prev)).
		alpha := 0.75
		if i == 0 {
			alpha = 1
		}
		var dir *ts.Tensor
		if a.Norm == Linf {
			dir = s.t(grad.t.Sign(false))
		} else {
			dir = s.unit(grad.t, L2)
		}
		zz := bl.project(&s, s.t(xAdv.t.Add(s.t(dir.Mul(step.t, false)), false)))
		momentum := s.t(xAdv.t.Sub(xOld.t, false))
		toward := s.t(s.t(zz.Sub(xAdv.t, false)).MulScalar(scalar(alpha), false))
		p := s.t(s.t(xAdv.t.Add(toward, false)).Add(s.t(momentum.MulScalar(scalar(1-alpha), false)), false))
		xOld.set(xAdv.t.Detach(false))
		xAdv.set(bl.project(&s, p).Detach(false))

		z, l, g := inputGrad(m, xAdv.t, loss)
		s.held = append(s.held, z, l)
		grad.set(g, nil)
		right := s.t(s.argmax(z).EqTensor(y, false))
		robust.set(robust.t.LogicalAnd(right, false))
		xFound.set(s.where(right, xFound.t, xAdv.t).Detach(false))

		rises.set(rises.t.Add(s.t(l.GtTensor(lPrev.t, false)), false))
		lPrev.set(l.Detach(false))
		better := s.t(l.GtTensor(lBest.t, false))
		xBest.set(s.where(better, xAdv.t, xBest.t).Detach(false))
		gBest.set(s.where(better, grad.t, gBest.t).Detach(false))
		lBest.set(s.where(better, l, lBest.t).Detach(false))

		if next < len(checks) && i+1 == checks[next].At {
			w := float64(checks[next].Window)
			next++
			oscillated := s.t(rises.t.Le(scalar(w*a.Rho), false))
			stalled := s.t(s.t(reduced.t.LogicalNot(false)).LogicalAnd(s.t(lBestLast.t.GeTensor(lBest.t, false)), false))
			halve := s.t(oscillated.LogicalOr(stalled, false))
			reduced.set(halve.Detach(false))
			lBestLast.set(lBest.t.Detach(false))
			halfStep := s.t(step.t.MulScalar(scalar(0.5), false))
			step.set(s.where(halve, halfStep, step.t).Detach(false))
			xAdv.set(s.where(halve, xBest.t, xAdv.t).Detach(false))
			grad.set(s.where(halve, gBest.t, grad.t).Detach(false))
			rises.set(rises.t.ZerosLike(false))
		}
		s.free()
	}
	found = xFound.t
	xFound.t = nil
	return found, must(robust.t.LogicalNot(false))
}
