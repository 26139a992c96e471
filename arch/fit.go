package arch

import (
	"errors"
	"fmt"
	"math"
)

// DefaultTolerance is Fit's default relative tolerance (±2%).
const DefaultTolerance = 0.02

// DefaultQuantum is Fit's default width multiple: 8, the divisibility
// RobArch's ConfigurableModel asserts.
const DefaultQuantum = 8

// FitOptions tune Fit. The zero value fits stage widths only, within ±2%.
type FitOptions struct {
	// Tolerance is the allowed relative distance to the budget
	// (0 means DefaultTolerance).
	Tolerance float64
	// ScaleDepth also scales every stage's depth (at least 1) by the same
	// factor as the widths first, then refines the widths alone.
	ScaleDepth bool
	// ScaleStem also scales the stem width.
	ScaleStem bool
	// Quantum is the multiple every fitted width is rounded to (0 means
	// DefaultQuantum).
	Quantum int
}

// InfeasibleError says no scaling reaches the budget within tolerance;
// Nearest is the closest count that can be reached, by NearestSpec.
type InfeasibleError struct {
	Budget      int64
	Tolerance   float64
	Nearest     int64
	NearestSpec Spec
}

func (e *InfeasibleError) Error() string {
	return fmt.Sprintf("budget %s (%d) cannot be reached within ±%g%%: the nearest reachable count is %s (%d, %+.2f%%)",
		FormatBudget(e.Budget), e.Budget, 100*e.Tolerance, FormatBudget(e.Nearest), e.Nearest,
		100*float64(e.Nearest-e.Budget)/float64(e.Budget))
}

// Fit rescales s's stage widths (and optionally depths and stem width) so
// its parameter count lands within the tolerance of budget. Widths stay
// multiples of the quantum, and a grouped stage keeps its number of groups
// with the group width following the bottleneck width, so every width
// stays divisible as the design space requires (RobArch's S/M/L family
// scales this way: two groups at every size). It returns the fitted spec
// and its exact count, or an *InfeasibleError carrying the nearest count.
func Fit(s Spec, budget int64, opts FitOptions) (Spec, int64, error) {
	if budget <= 0 {
		return Spec{}, 0, fmt.Errorf("fit: budget %d: want a positive parameter count", budget)
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = DefaultTolerance
	}
	if opts.Tolerance < 0 || opts.Tolerance >= 1 {
		return Spec{}, 0, fmt.Errorf("fit: tolerance %g: want a fraction in (0, 1), e.g. 0.02", opts.Tolerance)
	}
	if opts.Quantum == 0 {
		opts.Quantum = DefaultQuantum
	}
	if opts.Quantum < 1 {
		return Spec{}, 0, fmt.Errorf("fit: quantum %d: want a width multiple >= 1", opts.Quantum)
	}
	s = s.WithDefaults()
	if err := Check(s); err != nil {
		return Spec{}, 0, fmt.Errorf("fit: %w", err)
	}

	base := s
	if opts.ScaleDepth {
		depthAndWidth := func(t float64) (Spec, error) {
			d := scaleDepths(base, t)
			return scaleWidths(d, t, opts)
		}
		// Params grow about as depth × width², so a factor t on both
		// moves the count by about t³; either way the search is monotone.
		best, _, err := search(depthAndWidth, budget)
		if err != nil {
			return Spec{}, 0, fmt.Errorf("fit: %w", err)
		}
		base = s.Clone()
		for i := range base.Stages {
			base.Stages[i].Depth = best.Stages[i].Depth
		}
	}
	widths := func(a float64) (Spec, error) { return scaleWidths(base, a, opts) }
	best, n, err := search(widths, budget)
	if err != nil {
		return Spec{}, 0, fmt.Errorf("fit: %w", err)
	}
	if best, n, err = refine(best, n, budget, opts.Quantum); err != nil {
		return Spec{}, 0, fmt.Errorf("fit: %w", err)
	}
	if math.Abs(float64(n-budget)) > opts.Tolerance*float64(budget) {
		return Spec{}, 0, &InfeasibleError{Budget: budget, Tolerance: opts.Tolerance, Nearest: n, NearestSpec: best}
	}
	return best, n, nil
}

// search finds the factor whose spec's count is nearest budget, assuming
// the count does not decrease as the factor grows.
func search(at func(float64) (Spec, error), budget int64) (Spec, int64, error) {
	eval := func(f float64) (Spec, int64, error) {
		sp, err := at(f)
		if err != nil {
			return Spec{}, 0, err
		}
		l, err := Resolve(sp)
		if err != nil {
			return Spec{}, 0, err
		}
		return sp, l.Total.Params, nil
	}
	const minF, maxF = 1.0 / 1024, 1024.0
	lo, hi := 1.0, 1.0
	loS, loN, err := eval(lo)
	if err != nil {
		return Spec{}, 0, err
	}
	hiS, hiN := loS, loN
	for loN > budget && lo > minF {
		hi, hiS, hiN = lo, loS, loN
		lo /= 2
		if loS, loN, err = eval(lo); err != nil {
			return Spec{}, 0, err
		}
	}
	for hiN < budget && hi < maxF {
		lo, loS, loN = hi, hiS, hiN
		hi *= 2
		if hiS, hiN, err = eval(hi); err != nil {
			return Spec{}, 0, err
		}
	}
	if loN >= budget { // even the smallest reachable spec is too large
		return loS, loN, nil
	}
	if hiN <= budget { // even the largest is too small
		return hiS, hiN, nil
	}
	// Invariant: count(lo) < budget <= count(hi).
	for range 60 {
		mid := math.Sqrt(lo * hi)
		if mid <= lo || mid >= hi {
			break
		}
		ms, mn, err := eval(mid)
		if err != nil {
			return Spec{}, 0, err
		}
		if mn < budget {
			lo, loS, loN = mid, ms, mn
		} else {
			hi, hiS, hiN = mid, ms, mn
		}
	}
	if budget-loN < hiN-budget {
		return loS, loN, nil
	}
	return hiS, hiN, nil
}

// refine moves single stages one width step up or down while that brings
// the count closer to budget: a common factor moves every stage at once,
// whose combined step can exceed a tight tolerance.
func refine(s Spec, n, budget int64, q int) (Spec, int64, error) {
	dist := func(c int64) int64 { return max(c-budget, budget-c) }
	for range 8 * len(s.Stages) {
		bestS, bestN := s, n
		for i := range s.Stages {
			for _, dir := range []int{-1, 1} {
				st, ok := stepWidth(s.Stages[i], dir, q)
				if !ok {
					continue
				}
				cand := s.Clone()
				cand.Stages[i] = st
				l, err := Resolve(cand)
				if err != nil {
					continue // e.g. SE squeeze width would vanish
				}
				if dist(l.Total.Params) < dist(bestN) {
					bestS, bestN = cand, l.Total.Params
				}
			}
		}
		if bestN == n {
			break
		}
		s, n = bestS, bestN
	}
	return s, n, nil
}

// stepWidth returns the stage with the next valid width (a multiple of q)
// above (dir 1) or below (dir -1) its current one, keeping its number of
// groups.
func stepWidth(st Stage, dir, q int) (Stage, bool) {
	groups := groupCount(st)
	ok := func(w int) bool { return widthFits(st, groups, w) }
	w := (st.Width / q) * q
	if dir > 0 || w == st.Width {
		w += dir * q
	}
	for steps := 0; w >= q && steps < 1<<12; steps++ {
		if ok(w) {
			st.Width = w
			if groups > 0 {
				st.GroupWidth = BottleneckWidth(w, st.BottleneckMultiplier) / groups
			}
			return st, true
		}
		w += dir * q
	}
	return st, false
}

// groupCount is the number of groups a fit keeps for a stage; 0 means
// ungrouped (group width 0 stays 0).
func groupCount(st Stage) int {
	if st.Block == Bottleneck && st.GroupWidth > 0 {
		return BottleneckWidth(st.Width, st.BottleneckMultiplier) / st.GroupWidth
	}
	return 0
}

// widthFits reports whether width w keeps stage st's bottleneck divisible
// into its groups (a grouped basic block: w itself; the next stage's input
// divisibility is left to validation).
func widthFits(st Stage, groups, w int) bool {
	if st.Block != Bottleneck {
		return st.Groups <= 1 || w%st.Groups == 0
	}
	mid := BottleneckWidth(w, st.BottleneckMultiplier)
	return mid >= max(groups, 1) && (groups == 0 || mid%groups == 0)
}

// scaleDepths multiplies every stage's depth by t, keeping at least 1.
func scaleDepths(s Spec, t float64) Spec {
	s = s.Clone()
	for i := range s.Stages {
		s.Stages[i].Depth = max(1, int(math.Round(float64(s.Stages[i].Depth)*t)))
	}
	return s
}

// scaleWidths multiplies s's widths by a, rounding each to the nearest
// width that keeps the stage valid.
func scaleWidths(s Spec, a float64, opts FitOptions) (Spec, error) {
	s = s.Clone()
	q := opts.Quantum
	if opts.ScaleStem {
		s.Stem.Width = max(q, q*int(math.Round(a*float64(s.Stem.Width)/float64(q))))
	}
	for i := range s.Stages {
		st := &s.Stages[i]
		groups := groupCount(*st)
		w, err := nearestWidth(a*float64(st.Width), q, func(w int) bool { return widthFits(*st, groups, w) })
		if err != nil {
			return s, fmt.Errorf("stages[%d]: %w", i, err)
		}
		st.Width = w
		if groups > 0 {
			st.GroupWidth = BottleneckWidth(w, st.BottleneckMultiplier) / groups
		}
	}
	return s, nil
}

// errNoWidth means no multiple of the quantum satisfies a stage.
var errNoWidth = errors.New("no width within reach keeps the bottleneck divisible by its groups")

// nearestWidth is the multiple of q nearest target (at least q) for which
// ok holds; ties go to the smaller width, so the result never decreases as
// target grows.
func nearestWidth(target float64, q int, ok func(int) bool) (int, error) {
	k := max(1, int(math.Round(target/float64(q))))
	const reach = 1 << 16
	for d := 0; d < reach; d++ {
		lower, upper := (k-d)*q, (k+d)*q
		lowOK := lower >= q && ok(lower)
		upOK := ok(upper)
		switch {
		case lowOK && upOK:
			if math.Abs(float64(upper)-target) < math.Abs(float64(lower)-target) {
				return upper, nil
			}
			return lower, nil
		case lowOK:
			// An upper candidate one step further might be nearer.
			if next := (k + d + 1) * q; ok(next) && math.Abs(float64(next)-target) < math.Abs(float64(lower)-target) {
				return next, nil
			}
			return lower, nil
		case upOK:
			if prev := (k - d - 1) * q; prev >= q && ok(prev) && math.Abs(float64(prev)-target) < math.Abs(float64(upper)-target) {
				return prev, nil
			}
			return upper, nil
		}
	}
	return 0, errNoWidth
}
