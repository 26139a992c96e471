package attack

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/attackname"
)

// Square is the score-based black-box Square Attack (Andriushchenko et
// al. 2020): random search that only queries the model's logits. It starts
// from vertical stripes of ±ε (L∞) or from a grid of ±ε-scaled square
// patterns (L2) and then, each query, changes one random square window,
// keeping the change when it lowers the margin z_y − max_{j≠y} z_j. The
// window's share p of the image starts at PInit and shrinks on the
// schedule of the reference code (halving after 10, 50, 200, 500, 1000,
// 2000, 4000, 6000 and 8000 queries). Only samples still classified
// correctly are attacked or queried.
type Square struct {
	Norm    Norm    // Linf (default) or L2
	Eps     float64 // radius of the ball
	Queries int     // queries per sample; 0 means 5000
	PInit   float64 // initial window share; 0 means 0.8
	// Restarts from a new random start on the samples not yet fooled; 0
	// means 1.
	Restarts int
	Seed     int64
	KeepRNG  bool
}

func (q Square) withDefaults() Square {
	if q.Norm == "" {
		q.Norm = Linf
	}
	if q.Queries == 0 {
		q.Queries = 5000
	}
	if q.PInit == 0 {
		q.PInit = 0.8
	}
	if q.Restarts == 0 {
		q.Restarts = 1
	}
	return q
}

// Name implements Attack.
func (q Square) Name() string { return string(attackname.Square) }

// Validate reports the first bad field.
func (q Square) Validate() error {
	q = q.withDefaults()
	if err := q.Norm.validate(); err != nil {
		return fmt.Errorf("square: %w", err)
	}
	if err := validateEps(q.Eps); err != nil {
		return fmt.Errorf("square: %w", err)
	}
	switch {
	case q.Queries < 1:
		return fmt.Errorf("square: Queries %d: want at least 1 (0 means 5000)", q.Queries)
	case !(q.PInit > 0 && q.PInit <= 1):
		return fmt.Errorf("square: PInit %v: want 0 < PInit <= 1 (0 means 0.8)", q.PInit)
	case q.Restarts < 1:
		return fmt.Errorf("square: Restarts %d: want at least 1 (0 means 1)", q.Restarts)
	}
	return nil
}

// Perturb implements Attack.
func (q Square) Perturb(m Model, x, y *ts.Tensor) (adv *ts.Tensor, err error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	q = q.withDefaults()
	defer recoverTorch(&err, q.Name())
	if dims := size(x); len(dims) != 4 {
		return nil, fmt.Errorf("square: input shape %v: want [N, C, H, W]", dims)
	}
	reseed(q.Seed, q.KeepRNG)

	var best, robust state
	defer best.free()
	defer robust.free()
	best.set(x.Detach(false))
	robust.t = correct(m, x, y)
	for range q.Restarts {
		var s scope
		idx, k := s.nonzero(robust.t)
		if k == 0 {
			s.free()
			break
		}
		xs, ys := s.rows(x, idx), s.rows(y, idx)
		found := s.keep(q.run(m, xs, ys))
		wrong := s.t(s.keep(predict(m, found)).NeTensor(ys, false))
		fidx, nf := s.nonzero(wrong)
		if nf > 0 {
			at := s.rows(idx, fidx)
			best.set(best.t.IndexCopy(0, at, s.rows(found, fidx), false))
			falses := s.t(ts.Zeros([]int64{nf}, gotch.Bool, device(x)))
			robust.set(robust.t.IndexCopy(0, at, falses, false))
		}
		s.free()
	}
	return enforce(best.t, x, q.Eps, q.Norm), nil
}

// squareShare is the reference schedule of p, the share of the image a
// window covers, at query it (counting from 0).
func squareShare(pInit float64, it int) float64 {
	switch {
	case it <= 10:
		return pInit
	case it <= 50:
		return pInit / 2
	case it <= 200:
		return pInit / 4
	case it <= 500:
		return pInit / 8
	case it <= 1000:
		return pInit / 16
	case it <= 2000:
		return pInit / 32
	case it <= 4000:
		return pInit / 64
	case it <= 6000:
		return pInit / 128
	case it <= 8000:
		return pInit / 256
	}
	return pInit / 512
}

// margins are z_y − max_{j≠y} z_j of m at x, without a graph.
func margins(m Model, x, y *ts.Tensor) *ts.Tensor {
	var s scope
	defer s.free()
	z := s.keep(logits(m, x))
	return must(s.pick(z, y).Sub(s.bestOther(z, y), false))
}

// run is one Square run on samples x with labels y; it returns the best
// point found for every sample.
func (q Square) run(m Model, x, y *ts.Tensor) *ts.Tensor {
	dims := size(x)
	c, h, w := dims[1], dims[2], dims[3]
	features := float64(c * h * w)
	dev := device(x)
	var best, margin state
	defer best.free()
	defer margin.free()

	best.set(q.init(x))
	margin.t = margins(m, best.t, y)

	for it := range q.Queries {
		var s scope
		idx, k := s.nonzero(s.t(margin.t.Gt(scalar(0), false)))
		if k == 0 {
			s.free()
			break
		}
		xc, bc, yc, mc := s.rows(x, idx), s.rows(best.t, idx), s.rows(y, idx), s.rows(margin.t, idx)
		p := squareShare(q.PInit, it)
		side := int64(math.RoundToEven(math.Sqrt(p * features / float64(c))))
		var cand *ts.Tensor
		if q.Norm == Linf {
			side = min(max(side, 1), h, w)
			vh, vw := int64(randInt(int(h-side))), int64(randInt(int(w-side)))
			// One ±2ε value per channel over the window, the same for every
			// sample of the batch, as in the reference.
			signs := s.uniformSigns([]int64{c, 1, 1}, dev)
			patch := s.t(s.t(s.t(signs.MulScalar(scalar(2*q.Eps), false)).Expand([]int64{c, side, side}, false, false)).Totype(x.DType(), false))
			delta := s.t(patch.ConstantPadNd([]int64{vw, w - side - vw, vh, h - side - vh}, false))
			cand = s.project(s.t(bc.Add(delta, false)), xc, q.Eps, Linf)
		} else {
			cand = q.l2Candidate(&s, xc, bc, side, features)
		}
		mn := s.keep(margins(m, cand, yc))
		// Keep the candidate where it lowers the margin (for the margin
		// loss the reference's two updates coincide) or misclassifies.
		take := s.t(s.t(mn.LtTensor(mc, false)).LogicalOr(s.t(mn.Le(scalar(0), false)), false))
		newM := s.where(take, mn, mc)
		newB := s.where(take, cand, bc)
		margin.set(margin.t.IndexCopy(0, idx, newM, false))
		best.set(best.t.IndexCopy(0, idx, newB, false))
		s.free()
	}
	out := best.t
	best.t = nil
	return out
}

// init is the starting point: vertical stripes of ±ε per channel and
// column (L∞), or a grid of ±ε-signed square patterns scaled to norm ε
// (L2), clipped to [0,1].
func (q Square) init(x *ts.Tensor) (*ts.Tensor, error) {
	var s scope
	defer s.free()
	dims := size(x)
	n, c, h, w := dims[0], dims[1], dims[2], dims[3]
	dev := device(x)
	if q.Norm == Linf {
		signs := s.uniformSigns([]int64{n, c, 1, w}, dev)
		d := s.t(s.t(signs.MulScalar(scalar(q.Eps), false)).Totype(x.DType(), false))
		return s.clip01(s.t(x.Add(d, false))).Detach(false)
	}
	delta := s.t(x.ZerosLike(false))
	side := h / 5
	if side < 1 {
		side = 1
	}
	offset := (h - side*5) / 2
	for i := range h / side {
		vh := offset + i*side
		for j := range w / side {
			vw := offset + j*side
			if vh+side > h || vw+side > w {
				continue
			}
			pat := s.t(s.t(s.keep(squarePattern(side)).To(dev, false)).Totype(x.DType(), false))
			signs := s.uniformSigns([]int64{n, c, 1, 1}, dev)
			tile := s.t(s.t(pat.Reshape([]int64{1, 1, side, side}, false)).Mul(s.t(signs.Totype(x.DType(), false)), false))
			delta = s.t(delta.Add(s.t(tile.ConstantPadNd([]int64{vw, w - side - vw, vh, h - side - vh}, false)), false))
		}
	}
	d := s.t(s.unit(delta, L2).MulScalar(scalar(q.Eps), false))
	return s.clip01(s.t(x.Add(d, false))).Detach(false)
}

// l2Candidate is the L2 Square proposal: in a random window the
// perturbation is replaced by a new ±pattern plus the old window content
// (renormalised), a second random window is emptied, and the freed budget
// ε² − ‖δ‖² is spread over the new window; the whole perturbation is then
// rescaled to norm ε.
func (q Square) l2Candidate(s *scope, xc, bc *ts.Tensor, side int64, features float64) *ts.Tensor {
	dims := size(xc)
	n, c, h, w := dims[0], dims[1], dims[2], dims[3]
	dev := device(xc)
	dt := xc.DType()
	side = max(side, 3)
	if side%2 == 0 {
		side++
	}
	side = min(side, h, w)
	delta := s.t(bc.Sub(xc, false))
	window := func(vh, vw int64) *ts.Tensor {
		ones := s.t(ts.Ones([]int64{side, side}, dt, dev))
		return s.t(ones.ConstantPadNd([]int64{vw, w - side - vw, vh, h - side - vh}, false))
	}
	sqNorm := func(t *ts.Tensor) *ts.Tensor { // per (sample, channel) over the window, [n, c, 1, 1]
		return s.t(s.t(t.Square(false)).SumDimIntlist([]int64{2, 3}, true, dt, false))
	}
	vh, vw := int64(randInt(int(h-side))), int64(randInt(int(w-side)))
	mask1 := window(vh, vw)
	win1 := s.t(s.t(delta.Narrow(2, vh, side, false)).Narrow(3, vw, side, false))
	norm1 := s.t(sqNorm(win1).Sqrt(false))
	vh2, vw2 := int64(randInt(int(h-side))), int64(randInt(int(w-side)))
	mask2 := window(vh2, vw2)
	imageNorm := s.perSample(s.norms(delta, L2), delta)
	both := s.t(mask1.Maximum(mask2, false))
	windowsNorm2 := sqNorm(s.t(delta.Mul(both, false)))

	pat := s.t(s.t(s.keep(squarePattern(side)).To(dev, false)).Totype(dt, false))
	signs := s.t(s.uniformSigns([]int64{n, c, 1, 1}, dev).Totype(dt, false))
	fresh := s.t(s.t(pat.Reshape([]int64{1, 1, side, side}, false)).Mul(signs, false))
	old := s.t(win1.Div(s.t(norm1.AddScalar(scalar(1e-12), false)), false))
	fresh = s.t(fresh.Add(old, false))
	freshNorm := s.t(s.t(sqNorm(fresh).Sqrt(false)).AddScalar(scalar(1e-12), false))
	budget := s.t(s.t(s.t(imageNorm.Square(false)).Neg(false)).AddScalar(scalar(q.Eps*q.Eps), false))
	budget = s.t(s.t(budget.ClampMin(scalar(0), false)).DivScalar(scalar(float64(c)), false))
	scale := s.t(s.t(budget.Add(windowsNorm2, false)).Sqrt(false))
	fresh = s.t(s.t(fresh.Div(freshNorm, false)).Mul(scale, false))

	keep := s.t(s.t(both.Neg(false)).AddScalar(scalar(1), false))
	placed := s.t(fresh.ConstantPadNd([]int64{vw, w - side - vw, vh, h - side - vh}, false))
	delta = s.t(s.t(delta.Mul(keep, false)).Add(placed, false))
	d := s.t(s.unit(delta, L2).MulScalar(scalar(q.Eps), false))
	return s.clip01(s.t(xc.Add(d, false)))
}

// squarePattern is the L2 attack's s×s pattern: two halves of concentric
// squares with weights 1/(k+1)², the lower half negated, scaled to unit
// L2 norm, and transposed with probability ½ (one uniform from libtorch's
// CPU generator).
func squarePattern(side int64) *ts.Tensor {
	n := int(side)
	top := side / 2
	vals := make([]float64, n*n)
	fillRects := func(rows0, rows int, sign float64) {
		block := make([]float64, rows*n)
		cx, cy := rows/2, n/2
		for k := 0; k < max(rows/2+1, n/2+1); k++ {
			r0, r1 := max(cx, 0), min(cx+2*k+1, rows)
			c0, c1 := max(cy, 0), min(cy+2*k+1, n)
			for r := r0; r < r1; r++ {
				for c := c0; c < c1; c++ {
					block[r*n+c] += 1 / float64((k+1)*(k+1))
				}
			}
			cx--
			cy--
		}
		var ss float64
		for _, v := range block {
			ss += v * v
		}
		norm := math.Sqrt(ss)
		for i, v := range block {
			vals[rows0*n+i] = sign * v / norm
		}
	}
	fillRects(0, int(top), 1)
	fillRects(int(top), n-int(top), -1)
	var ss float64
	for _, v := range vals {
		ss += v * v
	}
	norm := math.Sqrt(ss)
	data := make([]float32, n*n)
	u := must(ts.Rand([]int64{1}, gotch.Float, gotch.CPU))
	transpose := floats(u)[0] > 0.5
	drop(u)
	for r := 0; r < n; r++ {
		for c := 0; c < n; c++ {
			v := vals[r*n+c] / norm
			if transpose {
				data[c*n+r] = float32(v)
			} else {
				data[r*n+c] = float32(v)
			}
		}
	}
	return must(ts.NewTensorFromData(data, []int64{side, side}))
}
