package attack

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/attackname"
)

// FAB is the targeted Fast Adaptive Boundary attack, FAB-T (Croce & Hein
// 2020, "Minimally distorted adversarial examples with a fast adaptive
// boundary attack"). It looks for the smallest perturbation that makes the
// model prefer target class t over y: every step linearises z_t − z_y at
// the current point, projects both the current point and the original x
// onto the linearised boundary within the image box [0,1], and moves to a
// convex combination of the two projections (weight of x's projection
// α = min(‖d_cur‖/(‖d_cur‖+‖d_orig‖), AlphaMax)), overshooting by Eta. Once
// misclassified, the point is pulled back towards x by Beta. A sample
// counts as fooled only if the smallest adversarial point found lies in
// the ε-ball. Targets are the t-th most likely classes for t = 2, ...,
// Targets+1, each attacking the samples still classified correctly.
type FAB struct {
	Norm  Norm    // Linf (default) or L2
	Eps   float64 // radius within which a found point counts
	Steps int     // iterations per target; 0 means 100
	// Targets is the number of target classes; 0 means 9, models with
	// fewer classes use classes − 1.
	Targets int
	// Restarts per target; 0 means 1. Runs after the first start from a
	// random point at distance Eps/2 from x.
	Restarts int
	AlphaMax float64 // 0 means 0.1
	Eta      float64 // overshoot; 0 means 1.05
	Beta     float64 // backward step; 0 means 0.9
	Seed     int64
	KeepRNG  bool
}

func (f FAB) withDefaults() FAB {
	if f.Norm == "" {
		f.Norm = Linf
	}
	if f.Steps == 0 {
		f.Steps = 100
	}
	if f.Targets == 0 {
		f.Targets = 9
	}
	if f.Restarts == 0 {
		f.Restarts = 1
	}
	if f.AlphaMax == 0 {
		f.AlphaMax = 0.1
	}
	if f.Eta == 0 {
		f.Eta = 1.05
	}
	if f.Beta == 0 {
		f.Beta = 0.9
	}
	return f
}

// Name implements Attack.
func (f FAB) Name() string { return string(attackname.FABT) }

// Validate reports the first bad field.
func (f FAB) Validate() error {
	f = f.withDefaults()
	if err := f.Norm.validate(); err != nil {
		return fmt.Errorf("fab-t: %w", err)
	}
	if err := validateEps(f.Eps); err != nil {
		return fmt.Errorf("fab-t: %w", err)
	}
	switch {
	case f.Steps < 1:
		return fmt.Errorf("fab-t: Steps %d: want at least 1 (0 means 100)", f.Steps)
	case f.Targets < 1:
		return fmt.Errorf("fab-t: Targets %d: want at least 1 (0 means 9)", f.Targets)
	case f.Restarts < 1:
		return fmt.Errorf("fab-t: Restarts %d: want at least 1 (0 means 1)", f.Restarts)
	case !(f.AlphaMax > 0 && f.AlphaMax <= 1):
		return fmt.Errorf("fab-t: AlphaMax %v: want 0 < AlphaMax <= 1 (0 means 0.1)", f.AlphaMax)
	case !(f.Eta >= 1):
		return fmt.Errorf("fab-t: Eta %v: want at least 1 (0 means 1.05)", f.Eta)
	case !(f.Beta > 0 && f.Beta <= 1):
		return fmt.Errorf("fab-t: Beta %v: want 0 < Beta <= 1 (0 means 0.9)", f.Beta)
	}
	return nil
}

// Perturb implements Attack.
func (f FAB) Perturb(m Model, x, y *ts.Tensor) (adv *ts.Tensor, err error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f = f.withDefaults()
	defer recoverTorch(&err, f.Name())
	reseed(f.Seed, f.KeepRNG)

	var best, robust state
	defer best.free()
	defer robust.free()
	best.set(x.Detach(false))
	robust.t = correct(m, x, y)
	z := logits(m, x)
	n := targetCount(f.Targets, classes(z))
	drop(z)

	for target := 2; target <= n+1; target++ {
		for r := range f.Restarts {
			var s scope
			idx, k := s.nonzero(robust.t)
			if k == 0 {
				s.free()
				break
			}
			xs, ys := s.rows(x, idx), s.rows(y, idx)
			zs := logits(m, xs)
			s.held = append(s.held, zs)
			_, order := s.t2(zs.Sort(1, false, false))
			t := s.t(order.Select(1, classes(zs)-int64(target), false))
			found, dist := f.run(m, xs, ys, t, r > 0)
			s.held = append(s.held, found, dist)
			// Fooled: misclassified at a distance within ε.
			wrong := s.t(s.keep(predict(m, found)).NeTensor(ys, false))
			near := s.t(dist.Le(scalar(f.Eps), false))
			fidx, nf := s.nonzero(s.t(wrong.LogicalAnd(near, false)))
			if nf > 0 {
				at := s.rows(idx, fidx)
				best.set(best.t.IndexCopy(0, at, s.rows(found, fidx), false))
				falses := s.t(ts.Zeros([]int64{nf}, gotch.Bool, device(x)))
				robust.set(robust.t.IndexCopy(0, at, falses, false))
			}
			s.free()
		}
	}
	return enforce(best.t, x, f.Eps, f.Norm), nil
}

// run attacks samples x (labels y, targets t) and returns the closest
// misclassified point found (x itself where none was) and its distance
// to x (1e10 where none was).
func (f FAB) run(m Model, x, y, t *ts.Tensor, randomStart bool) (found, dist *ts.Tensor) {
	n := size(x)[0]
	dev := device(x)
	var cur, best, bestDist state
	defer cur.free()
	defer best.free()
	defer bestDist.free()
	best.set(x.Detach(false))
	bestDist.set(ts.Full([]int64{n}, scalar(1e10), x.DType(), dev))
	if randomStart {
		cur.set(sphereStart(x, f.Norm, f.Eps/2), nil)
	} else {
		cur.set(x.Detach(false))
	}
	shape := size(x)
	decision := targetMargin(y, t)
	for range f.Steps {
		var s scope
		// Linearise z_t − z_y at cur: the boundary is w·p = b.
		zc, df, w := inputGrad(m, cur.t, decision)
		s.held = append(s.held, zc, df, w)
		wf := s.flat(w)
		curF := s.flat(cur.t)
		dot := s.t(s.t(wf.Mul(curF, false)).SumDimIntlist([]int64{1}, false, x.DType(), false))
		b := s.t(dot.Sub(df, false))

		// Project the current point and x onto the boundary in one batch.
		pts := s.t(ts.Cat([]*ts.Tensor{curF, s.flat(x)}, 0))
		ws := s.t(ts.Cat([]*ts.Tensor{wf, wf}, 0))
		bs := s.t(ts.Cat([]*ts.Tensor{b, b}, 0))
		d := projectBoxHyperplane(&s, pts, ws, bs, f.Norm)
		dCur := s.t(s.t(d.Narrow(0, 0, n, false)).Reshape(shape, false))
		dOrig := s.t(s.t(d.Narrow(0, n, n, false)).Reshape(shape, false))
		aCur := s.t(s.norms(dCur, f.Norm).ClampMin(scalar(1e-8), false))
		aOrig := s.t(s.norms(dOrig, f.Norm).ClampMin(scalar(1e-8), false))
		alpha := s.t(s.t(aCur.Div(s.t(aCur.Add(aOrig, false)), false)).Clamp(scalar(0), scalar(f.AlphaMax), false))
		alphaB := s.perSample(alpha, x)
		oneMinus := s.t(s.t(alphaB.Neg(false)).AddScalar(scalar(1), false))
		fromCur := s.t(s.t(cur.t.Add(s.t(dCur.MulScalar(scalar(f.Eta), false)), false)).Mul(oneMinus, false))
		fromOrig := s.t(s.t(x.Add(s.t(dOrig.MulScalar(scalar(f.Eta), false)), false)).Mul(alphaB, false))
		next := s.clip01(s.t(fromCur.Add(fromOrig, false)))

		isAdv := s.t(s.keep(predict(m, next)).NeTensor(y, false))
		dn := s.norms(s.t(next.Sub(x, false)), f.Norm)
		closer := s.t(isAdv.LogicalAnd(s.t(dn.LtTensor(bestDist.t, false)), false))
		best.set(s.where(closer, next, best.t).Detach(false))
		bestDist.set(s.where(closer, dn, bestDist.t).Detach(false))
		back := s.t(x.Add(s.t(s.t(next.Sub(x, false)).MulScalar(scalar(f.Beta), false)), false))
		cur.set(s.where(isAdv, back, next).Detach(false))
		s.free()
	}
	found, dist = best.t, bestDist.t
	best.t, bestDist.t = nil, nil
	return found, dist
}

// projectBoxHyperplane returns, for every row p of points [M, D], the
// smallest step d (in the L∞ or L2 norm) with w·(p+d) = b and p+d in
// [0,1]^D; where no such step exists, the step to the corner of the box
// that goes furthest towards the hyperplane.
//
// Both problems reduce to one: flip w's sign so that the required change
// r = |b − w·p| is non-negative, let u_i be coordinate i's room in the
// direction of w_i (1 − p_i or p_i). The L∞ solution moves every
// coordinate by min(λ, u_i) with Σ|w_i|·min(λ, u_i) = r; the L2 solution
// (from its KKT conditions) moves it by |w_i|·min(λ, u_i/|w_i|), i.e.
// Σ w_i²·min(λ, u_i/|w_i|) = r. Either way λ solves Σ a_i·min(λ, v_i) = r,
// a piecewise linear, non-decreasing function of λ, found exactly by
// sorting the breakpoints v_i.
func projectBoxHyperplane(s *scope, p, w, b *ts.Tensor, norm Norm) *ts.Tensor {
	dims := size(p)
	dt := p.DType()
	wp := s.t(s.t(w.Mul(p, false)).SumDimIntlist([]int64{1}, false, dt, false))
	r := s.t(b.Sub(wp, false))
	sign := s.t(s.t(s.t(r.Ge(scalar(0), false)).Totype(dt, false)).MulScalar(scalar(2), false))
	sign = s.t(sign.AddScalar(scalar(-1), false)) // +1 where r ≥ 0, −1 elsewhere
	wf := s.t(w.Mul(s.t(sign.Unsqueeze(1, false)), false))
	rf := s.t(r.Abs(false))
	up := s.t(wf.Gt(scalar(0), false))
	room := s.t(s.t(s.t(p.Neg(false)).AddScalar(scalar(1), false)).WhereSelf(up, p, false))
	absW := s.t(wf.Abs(false))
	live := s.t(absW.Gt(scalar(1e-12), false))

	var a, v *ts.Tensor
	if norm == Linf {
		a, v = absW, room
	} else {
		a = s.t(wf.Square(false))
		ratio := s.t(room.Div(s.t(absW.ClampMin(scalar(1e-12), false)), false))
		v = s.t(ratio.WhereSelf(live, s.t(ratio.FullLike(scalar(1e12), false)), false))
	}
	vs, order := s.t2(v.Sort(1, false, false))
	as := s.t(a.Gather(1, order, false, false))
	cumA := s.t(as.Cumsum(1, dt, false))
	cumAV := s.t(s.t(as.Mul(vs, false)).Cumsum(1, dt, false))
	total := s.t(cumA.Select(1, dims[1]-1, false))
	// f at λ = v_(k): Σ_{j≤k} a_j v_j + v_(k)·Σ_{j>k} a_j
	rest := s.t(s.t(cumA.Neg(false)).Add(s.t(total.Unsqueeze(1, false)), false))
	fk := s.t(cumAV.Add(s.t(vs.Mul(rest, false)), false))
	below := s.t(s.t(fk.LtTensor(s.t(rf.Unsqueeze(1, false)), false)).SumDimIntlist([]int64{1}, false, gotch.Int64, false))
	feasible := s.t(below.Lt(ts.IntScalar(dims[1]), false))
	// λ = (r − Σ_{j<k} a_j v_j) / Σ_{j≥k} a_j with k the first breakpoint
	// where f reaches r; the sums before k come from zero-padded cumsums.
	zero := s.t(ts.Zeros([]int64{dims[0], 1}, dt, device(p)))
	padA := s.t(ts.Cat([]*ts.Tensor{zero, cumA}, 1))
	padAV := s.t(ts.Cat([]*ts.Tensor{zero, cumAV}, 1))
	at := s.t(s.t(below.ClampMax(ts.IntScalar(dims[1]-1), false)).Unsqueeze(1, false))
	prevA := s.t(s.t(padA.Gather(1, at, false, false)).Reshape([]int64{-1}, false))
	prevAV := s.t(s.t(padAV.Gather(1, at, false, false)).Reshape([]int64{-1}, false))
	slope := s.t(s.t(total.Sub(prevA, false)).ClampMin(scalar(1e-30), false))
	lambda := s.t(s.t(rf.Sub(prevAV, false)).Div(slope, false))
	lambda = s.t(lambda.WhereSelf(feasible, s.t(lambda.FullLike(scalar(1e30), false)), false))
	lam := s.t(lambda.Unsqueeze(1, false))

	var d *ts.Tensor
	if norm == Linf {
		d = s.t(s.t(wf.Sign(false)).Mul(s.t(room.ClampMaxTensor(lam, false)), false))
	} else {
		d = s.t(wf.Mul(s.t(v.ClampMaxTensor(lam, false)), false))
	}
	return s.t(d.Mul(s.t(live.Totype(dt, false)), false))
}
