package attack

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func TestAPGDCheckpoints(t *testing.T) {
	// Croce & Hein 2020: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j −
	// p_{j−1} − 0.03, 0.06): after 22, 41, 57, 70, 80, 87, 93, 99 of 100.
	var at, win []int
	for _, c := range apgdCheckpoints(100) {
		at = append(at, c.At)
		win = append(win, c.Window)
	}
	assert.Equal(t, []int{22, 41, 57, 70, 80, 87, 93, 99}, at)
	assert.Equal(t, []int{22, 19, 16, 13, 10, 7, 6, 6}, win)
	assert.Equal(t, []checkpoint{{4, 4}, {7, 3}, {9, 2}, {10, 1}, {11, 1}, {12, 1}, {13, 1}, {14, 1}, {15, 1}, {16, 1}, {17, 1}, {18, 1}, {19, 1}, {20, 1}}, apgdCheckpoints(20))
	assert.Equal(t, []checkpoint{{1, 1}}, apgdCheckpoints(1))
}

func TestLosses(t *testing.T) {
	onTorch(t, func() error {
		// Logits sorted descending: 3 (class 1), 2 (class 2), 1 (class 0), 0.
		z := ts.MustOfSlice([]float32{1, 3, 2, 0}).MustView([]int64{1, 4}, true)
		y := ts.MustOfSlice([]int64{0})
		tg := ts.MustOfSlice([]int64{2})
		defer drop(z, y, tg)
		eval := func(f lossFn) float64 {
			var s scope
			defer s.free()
			return floats(f(&s, z))[0]
		}
		logSumExp := math.Log(math.Exp(1) + math.Exp(3) + math.Exp(2) + math.Exp(0))
		assert.InDelta(t, logSumExp-1, eval(ceLoss(y)), 1e-6)
		assert.InDelta(t, 2, eval(cwLoss(y)), 1e-6)                // 3 − 1
		assert.InDelta(t, 1, eval(dlrLoss(y)), 1e-6)               // (3 − 1)/(3 − 1)
		assert.InDelta(t, 0.4, eval(targetedDLRLoss(y, tg)), 1e-6) // (2 − 1)/(3 − (1+0)/2)
		assert.InDelta(t, 1, eval(targetMargin(y, tg)), 1e-6)      // 2 − 1

		// Three classes: the smallest logit stands in for z_π4.
		z3 := ts.MustOfSlice([]float32{1, 3, 2}).MustView([]int64{1, 3}, true)
		defer drop(z3)
		var s scope
		defer s.free()
		assert.InDelta(t, 1.0/2, floats(targetedDLRLoss(y, tg)(&s, z3))[0], 1e-6) // (2 − 1)/(3 − 1)
		return nil
	})
}

func TestDLRNeedsThreeClasses(t *testing.T) {
	f := trained(t, 2)
	onTorch(t, func() error {
		_, err := PGD{Eps: 0.1, Steps: 1, Loss: DLR}.Perturb(f.net.model(), f.x, f.y)
		assert.ErrorContains(t, err, "at least 3 classes")
		return nil
	})
}

// linfProjection solves the L∞ problem by bisection on its definition:
// the smallest λ for which some step with |d_i| ≤ λ inside the box
// reaches the hyperplane.
func linfProjection(p, w []float64, b float64) []float64 {
	r := b
	for i := range p {
		r -= w[i] * p[i]
	}
	sign := 1.0
	if r < 0 {
		sign = -1
	}
	room := func(i int) float64 {
		if sign*w[i] > 0 {
			return 1 - p[i]
		}
		return p[i]
	}
	reach := func(lam float64) float64 {
		var v float64
		for i := range p {
			v += math.Abs(w[i]) * math.Min(lam, room(i))
		}
		return v
	}
	lo, hi := 0.0, 1.0
	if reach(hi) < math.Abs(r) {
		lo = hi // infeasible: go to the corner
	}
	for range 200 {
		mid := (lo + hi) / 2
		if reach(mid) < math.Abs(r) {
			lo = mid
		} else {
			hi = mid
		}
	}
	d := make([]float64, len(p))
	for i := range p {
		if w[i] != 0 {
			d[i] = math.Copysign(math.Min(hi, room(i)), sign*w[i])
		}
	}
	return d
}

// l2Projection finds the nearest point of the hyperplane ∩ box with
// Dykstra's alternating projections, an independent method.
func l2Projection(p, w []float64, b float64) []float64 {
	n := len(p)
	x := append([]float64(nil), p...)
	pInc, qInc := make([]float64, n), make([]float64, n)
	var ww float64
	for _, v := range w {
		ww += v * v
	}
	for range 20000 {
		// Hyperplane.
		y := make([]float64, n)
		var dot float64
		for i := range x {
			y[i] = x[i] + pInc[i]
			dot += w[i] * y[i]
		}
		for i := range y {
			yi := y[i] - (dot-b)/ww*w[i]
			pInc[i] = x[i] + pInc[i] - yi
			y[i] = yi
		}
		// Box.
		for i := range x {
			v := y[i] + qInc[i]
			c := math.Min(1, math.Max(0, v))
			qInc[i] = v - c
			x[i] = c
		}
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = x[i] - p[i]
	}
	return d
}

func TestProjectBoxHyperplane(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, dims = 40, 7
	p := make([]float32, rows*dims)
	w := make([]float32, rows*dims)
	b := make([]float32, rows)
	for i := range rows {
		var wp float64
		for j := range dims {
			p[i*dims+j] = rng.Float32()
			w[i*dims+j] = float32(rng.NormFloat64())
			if j == 3 && i%5 == 0 {
				w[i*dims+j] = 0 // a coordinate the hyperplane ignores
			}
			wp += float64(w[i*dims+j] * p[i*dims+j])
		}
		// Mostly reachable targets, some out of the box's reach.
		b[i] = float32(wp + rng.NormFloat64()*0.8)
	}
	onTorch(t, func() error {
		pt := ts.MustOfSlice(p).MustView([]int64{rows, dims}, true)
		wt := ts.MustOfSlice(w).MustView([]int64{rows, dims}, true)
		bt := ts.MustOfSlice(b)
		defer drop(pt, wt, bt)
		for _, norm := range []Norm{Linf, L2} {
			var s scope
			got := floats(projectBoxHyperplane(&s, pt, wt, bt, norm))
			s.free()
			feasible := 0
			for i := range rows {
				pi := toF64(p[i*dims : (i+1)*dims])
				wi := toF64(w[i*dims : (i+1)*dims])
				var want []float64
				if norm == Linf {
					want = linfProjection(pi, wi, float64(b[i]))
				} else {
					want = l2Projection(pi, wi, float64(b[i]))
				}
				gi := got[i*dims : (i+1)*dims]
				var onPlane float64
				for j := range gi {
					q := pi[j] + gi[j]
					assert.GreaterOrEqual(t, q, -1e-5, "row %d leaves the box", i)
					assert.LessOrEqual(t, q, 1+1e-5, "row %d leaves the box", i)
					onPlane += wi[j] * q
				}
				if math.Abs(onPlane-float64(b[i])) < 1e-4 {
					feasible++
				}
				assert.InDeltaSlice(t, want, gi, 2e-4, "%s row %d", norm, i)
			}
			assert.Greater(t, feasible, rows/2, "most rows reach their hyperplane")
			assert.Less(t, feasible, rows, "some rows cannot")
		}
		return nil
	})
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestSquareSchedule(t *testing.T) {
	for it, want := range map[int]float64{0: 0.8, 10: 0.8, 11: 0.4, 50: 0.4, 51: 0.2, 201: 0.1, 501: 0.05, 1001: 0.025, 2001: 0.0125, 4001: 0.00625, 6001: 0.003125, 8001: 0.0015625} {
		assert.InDelta(t, want, squareShare(0.8, it), 1e-12, "query %d", it)
	}
	onTorch(t, func() error {
		for _, side := range []int64{1, 3, 4, 7} {
			pat := squarePattern(side)
			v := floats(pat)
			drop(pat)
			var ss float64
			for _, x := range v {
				ss += x * x
			}
			assert.InDelta(t, 1, ss, 1e-5, "side %d: unit norm", side)
			if side > 1 {
				assert.Less(t, v[len(v)-1]*v[0], 0.0, "side %d: halves of opposite sign", side)
			}
		}
		return nil
	})
}

func TestValidationNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		a     Attack
		field string
	}{
		{PGD{Eps: 0, Steps: 10}, "Eps"},
		{PGD{Eps: 0.1, Steps: 0}, "Steps"},
		{PGD{Eps: 0.1, Steps: 1, Norm: "L1"}, "Norm"},
		{PGD{Eps: 0.1, Steps: 1, Loss: "hinge"}, "Loss"},
		{PGD{Eps: 0.1, Steps: 1, StepSize: -1}, "StepSize"},
		{PGD{Eps: 0.1, Steps: 1, Restarts: -2}, "Restarts"},
		{FGSM{Eps: -1}, "Eps"},
		{APGD{Eps: 0.1, Rho: 2}, "Rho"},
		{APGD{Eps: 0.1, Loss: CW}, "Loss"},
		{APGD{Eps: 0.1, Steps: -1}, "Steps"},
		{APGD{Eps: 0.1, Targeted: true, Targets: -1}, "Targets"},
		{FAB{Eps: 0.1, Beta: 2}, "Beta"},
		{FAB{Eps: 0.1, Eta: 0.5}, "Eta"},
		{FAB{Eps: 0.1, AlphaMax: 3}, "AlphaMax"},
		{Square{Eps: 0.1, PInit: 2}, "PInit"},
		{Square{Eps: 0.1, Queries: -5}, "Queries"},
		{Square{Norm: "L0", Eps: 0.1}, "Norm"},
		{&AutoAttack{Version: "plus", Eps: 0.1}, "Version"},
		{&AutoAttack{Eps: 0}, "Eps"},
	} {
		err := tc.a.(interface{ Validate() error }).Validate()
		require.Error(t, err, "%#v", tc.a)
		assert.Contains(t, err.Error(), tc.field)
		_, err = tc.a.Perturb(nil, nil, nil)
		assert.ErrorContains(t, err, tc.field, "Perturb validates first")
	}
}

func TestByName(t *testing.T) {
	for name, want := range map[string]string{
		"fgsm": "fgsm", "pgd20": "pgd20", "PGD7-cw": "pgd7-cw", "pgd10-dlr": "pgd10-dlr",
		"apgd-ce": "apgd-ce", "apgd-dlr": "apgd-dlr", "apgd-t": "apgd-t", "fab-t": "fab-t",
		"square": "square", "aa": "aa", "aa-fast": "aa-fast",
	} {
		a, err := ByName(name, Linf, 8.0/255, 0)
		require.NoError(t, err, name)
		assert.Equal(t, want, a.Name())
	}
	p, err := ByName("pgd20", L2, 0.5, 3)
	require.NoError(t, err)
	assert.Equal(t, PGD{Norm: L2, Eps: 0.5, Steps: 20, RandomStart: true, Loss: CE, Seed: 3}, p)
	aa, err := ByName("aa", L2, 0.5, 3)
	require.NoError(t, err)
	assert.Len(t, aa.(*AutoAttack).Components(), 4)
	fast, err := ByName("aa-fast", Linf, 0.03, 3)
	require.NoError(t, err)
	assert.Len(t, fast.(*AutoAttack).Components(), 2)

	for _, bad := range []string{"pgd", "pgd0", "pgdx", "cw", "apgd", ""} {
		_, err := ByName(bad, Linf, 0.03, 0)
		assert.Error(t, err, bad)
	}
	_, err = ByName("pgd10", Linf, 0, 0)
	assert.ErrorContains(t, err, "Eps")
	_, err = ByName("square", "L1", 0.1, 0)
	assert.ErrorContains(t, err, "Norm")
}

func TestParseNorm(t *testing.T) {
	for in, want := range map[string]Norm{"Linf": Linf, "linf": Linf, "inf": Linf, "L2": L2, "l2": L2} {
		got, err := ParseNorm(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ParseNorm("L1")
	assert.ErrorContains(t, err, "Linf or L2")
}

func TestNormsAndProjection(t *testing.T) {
	onTorch(t, func() error {
		x := ts.MustFull([]int64{2, 1, 2, 2}, ts.FloatScalar(0.5), gotch.Float, gotch.CPU)
		p := ts.MustOfSlice([]float32{0.9, 0.5, 0.5, 0.2, 3, 3, 3, 3}).MustView([]int64{2, 1, 2, 2}, true)
		defer drop(x, p)
		var s scope
		defer s.free()
		linf := floats(s.project(p, x, 0.1, Linf))
		assert.InDeltaSlice(t, []float64{0.6, 0.5, 0.5, 0.4, 0.6, 0.6, 0.6, 0.6}, linf, 1e-6)
		l2 := s.project(p, x, 0.2, L2)
		assert.InDeltaSlice(t, []float64{0.2, 0.2}, floats(s.norms(s.t(l2.Sub(x, false)), L2)), 1e-6)
		assert.InDeltaSlice(t, []float64{0.4, 2.5}, floats(s.norms(s.t(p.Sub(x, false)), Linf)), 1e-6)
		return nil
	})
}
