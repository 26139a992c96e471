package attack

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"runtime"
	"time"

	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/attackname"
)

// Batch is clean inputs X [N, C, H, W] in [0,1] and labels Y [N] (int64),
// on the model's device. Evaluate does not free them.
type Batch struct{ X, Y *ts.Tensor }

// NewBatch pairs images and labels (torchbatch.Stream's wrap).
func NewBatch(x, y *ts.Tensor) Batch { return Batch{X: x, Y: y} }

// TensorBatches yields x and y in batches of at most size samples (views
// of x and y, which must outlive the iteration).
func TensorBatches(x, y *ts.Tensor, size int) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		dims, err := x.Size()
		if err != nil || size < 1 {
			yield(Batch{}, fmt.Errorf("tensor batches: size %d (want >= 1), shape error %v", size, err))
			return
		}
		n := dims[0]
		for start := int64(0); start < n; start += int64(size) {
			k := min(int64(size), n-start)
			bx, err := x.Narrow(0, start, k, false)
			if err != nil {
				yield(Batch{}, fmt.Errorf("tensor batches: %w", err))
				return
			}
			by, err := y.Narrow(0, start, k, false)
			if err != nil {
				drop(bx)
				yield(Batch{}, fmt.Errorf("tensor batches: %w", err))
				return
			}
			more := yield(Batch{X: bx, Y: by}, nil)
			drop(bx, by)
			if !more {
				return
			}
		}
	}
}

// EvalOptions tune Evaluate.
type EvalOptions struct {
	// Log receives progress and warnings; nil means slog.Default().
	Log *slog.Logger
	// SkipChecks turns off the sanity checks on the first batch.
	SkipChecks bool
	// Shard, when set, makes this call one process's share of an
	// evaluation split across processes (see Shard); the report then
	// holds everyone's counts.
	Shard *Shard
}

// Shard is one process's part in an evaluation split across processes by
// whole batches: the caller feeds Evaluate global batches Rank, Rank+Size,
// Rank+2·Size, ... (data.ShardBatches), and Sum adds a vector of counts
// across the processes in place (a collective every process calls). Every
// attack reseeds at the start of each batch, so a batch's outcome does not
// depend on which process ran it, and the counts equal one process's.
type Shard struct {
	Rank, Size int
	Sum        func([]float64) error
}

// Report is the outcome of Evaluate. Accuracies are fractions of N.
type Report struct {
	N        int     `json:"n"`
	CleanAcc float64 `json:"clean_acc"`
	// RobustAcc is the worst case: samples no attack fooled (and that were
	// classified correctly to begin with).
	RobustAcc float64 `json:"robust_acc"`
	// PerAttack is each attack's robust accuracy on its own.
	PerAttack map[string]float64 `json:"per_attack"`
	Attacks   []string           `json:"attacks"` // attack names in the order given
	// Stages holds, for ensembles (AutoAttack), the robust accuracy after
	// each component, cumulatively.
	Stages   map[string][]StageAcc `json:"stages,omitempty"`
	Seconds  map[string]float64    `json:"seconds"` // time per attack
	Warnings []string              `json:"warnings,omitempty"`
}

// StageAcc is an ensemble's robust accuracy after one of its components.
type StageAcc struct {
	Attack    string  `json:"attack"`
	RobustAcc float64 `json:"robust_acc"`
}

// staged is an attack that reports per-component progress (AutoAttack).
type staged interface {
	PerturbStages(m Model, x, y *ts.Tensor) (*ts.Tensor, []Stage, error)
}

// Evaluate measures m's clean accuracy on the batches, each attack's
// robust accuracy on its own, and the worst case over all attacks. On the
// first batch it runs the sanity checks of AutoAttack's authors (a
// randomised model, probabilities instead of logits, zero gradients); at
// the end it warns when the black-box Square attack beat the white-box
// ones. Warnings are logged and listed in the report.
//
// Attacks run only on the points the model classifies correctly: a point
// misclassified clean is lost whatever the attack does (AutoAttack's
// rule), so attacking it is wasted work. The calling goroutine is locked
// to its OS thread while Evaluate runs.
func Evaluate(ctx context.Context, m Model, batches iter.Seq2[Batch, error], attacks []Attack, opts EvalOptions) (rep Report, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	rep = Report{PerAttack: map[string]float64{}, Seconds: map[string]float64{}}
	seen := map[string]bool{}
	for _, a := range attacks {
		if seen[a.Name()] {
			return rep, fmt.Errorf("evaluate: attack %q given twice; names must be unique", a.Name())
		}
		seen[a.Name()] = true
		rep.Attacks = append(rep.Attacks, a.Name())
	}
	defer recoverTorch(&err, "evaluate")

	c := counts{robust: make([]int, len(attacks)), stages: map[string][]int{}, seconds: rep.Seconds}
	first := true
	for b, berr := range batches {
		if berr != nil {
			return rep, fmt.Errorf("evaluate: %w", berr)
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if first && !opts.SkipChecks && (opts.Shard == nil || opts.Shard.Rank == 0) {
			for _, w := range sanityChecks(m, b.X, b.Y) {
				log.Warn("attack sanity check", "warning", w)
				rep.Warnings = append(rep.Warnings, w)
			}
		}
		first = false
		if err := c.add(ctx, m, b, attacks); err != nil {
			return rep, err
		}
		rep.N = c.n
		log.Info("evaluated batch", "samples", c.n, "clean", c.clean, "worst_case_robust", c.worst)
	}
	if opts.Shard != nil && opts.Shard.Size > 1 {
		if err := c.sumShards(opts.Shard, attacks); err != nil {
			return rep, fmt.Errorf("evaluate: %w", err)
		}
		rep.N = c.n
	}
	if rep.N == 0 {
		return rep, fmt.Errorf("evaluate: no samples")
	}
	c.fill(&rep, attacks)
	for _, w := range squareWarnings(rep) {
		log.Warn("attack sanity check", "warning", w)
		rep.Warnings = append(rep.Warnings, w)
	}
	return rep, nil
}

// counts are Evaluate's running totals: samples, clean and worst-case
// robust points, each attack's robust points (in the order given), each
// staged attack's robust points per component, and seconds per attack.
type counts struct {
	n, clean, worst int
	robust          []int
	stages          map[string][]int
	seconds         map[string]float64
}

// add attacks the points of b that m classifies correctly with every
// attack in turn, until none is left standing, and counts the outcome.
func (c *counts) add(ctx context.Context, m Model, b Batch, attacks []Attack) error {
	right := correct(m, b.X, b.Y)
	okClean := bools(right)
	okWorst := append([]bool(nil), okClean...)
	// The points still standing, and where each sits in the batch.
	standing := standingPoints(okClean)
	xs, ys := b.X, b.Y
	if len(standing) < len(okClean) && len(standing) > 0 {
		xs, ys = selectRows(b.X, right), selectRows(b.Y, right)
	}
	drop(right)
	defer dropSelected(b, xs, ys)
	for i, a := range attacks {
		if len(standing) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		okAdv, st, err := attackPoints(m, a, xs, ys)
		if err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		for j, ok := range okAdv {
			if ok {
				c.robust[i]++
			} else {
				okWorst[standing[j]] = false
			}
		}
		if st != nil {
			k := c.stages[a.Name()]
			if k == nil {
				k = make([]int, len(st))
			}
			for j, s := range st {
				k[j] += s.Robust
			}
			c.stages[a.Name()] = k
		}
		c.seconds[a.Name()] += time.Since(start).Seconds()
	}
	c.n += len(okClean)
	for j := range okClean {
		if okClean[j] {
			c.clean++
		}
		if okWorst[j] {
			c.worst++
		}
	}
	return nil
}

// fill writes the accuracies of the counts (over rep.N samples) into rep.
func (c *counts) fill(rep *Report, attacks []Attack) {
	frac := func(k int) float64 { return float64(k) / float64(rep.N) }
	rep.CleanAcc, rep.RobustAcc = frac(c.clean), frac(c.worst)
	for i, a := range attacks {
		rep.PerAttack[a.Name()] = frac(c.robust[i])
	}
	for _, a := range attacks {
		k, ok := c.stages[a.Name()]
		if !ok {
			continue
		}
		if rep.Stages == nil {
			rep.Stages = map[string][]StageAcc{}
		}
		comps := a.(interface{ Components() []Attack }).Components()
		for j, r := range k {
			rep.Stages[a.Name()] = append(rep.Stages[a.Name()], StageAcc{Attack: comps[j].Name(), RobustAcc: frac(r)})
		}
	}
}

// standingPoints are the positions of the true values of ok.
func standingPoints(ok []bool) []int {
	var idx []int
	for j, v := range ok {
		if v {
			idx = append(idx, j)
		}
	}
	return idx
}

// selectRows is the rows of t where mask is true (a new tensor).
func selectRows(t, mask *ts.Tensor) *ts.Tensor {
	var s scope
	defer s.free()
	idx, _ := s.nonzero(mask)
	return must(t.IndexSelect(0, idx, false))
}

// dropSelected frees xs and ys when they are selections, not b's own.
func dropSelected(b Batch, xs, ys *ts.Tensor) {
	if xs != b.X {
		drop(xs, ys)
	}
}

// attackPoints runs a on (x, y) and says, per point, whether the model
// still classifies the adversarial input correctly; a staged attack also
// reports its components.
func attackPoints(m Model, a Attack, x, y *ts.Tensor) ([]bool, []Stage, error) {
	var adv *ts.Tensor
	var st []Stage
	var err error
	if sa, ok := a.(staged); ok {
		adv, st, err = sa.PerturbStages(m, x, y)
	} else {
		adv, err = a.Perturb(m, x, y)
	}
	if err != nil {
		return nil, nil, err
	}
	r := correct(m, adv, y)
	defer drop(r, adv)
	return bools(r), st, nil
}

// sumShards adds every process's counts into this one's, in a fixed
// order all processes share (attacks in the order given, stages by the
// sorted attack names).
func (c *counts) sumShards(sh *Shard, attacks []Attack) error {
	if sh.Sum == nil {
		return fmt.Errorf("shard %d of %d has no Sum", sh.Rank, sh.Size)
	}
	vals := []float64{float64(c.n), float64(c.clean), float64(c.worst)}
	for _, r := range c.robust {
		vals = append(vals, float64(r))
	}
	// Every process has the same stage count per staged attack, even one
	// whose share held no standing point.
	stagedAt := map[string]int{}
	for _, a := range attacks {
		if comp, ok := a.(interface{ Components() []Attack }); ok {
			if _, isStaged := a.(staged); isStaged {
				k := len(comp.Components())
				full := make([]int, k)
				copy(full, c.stages[a.Name()])
				c.stages[a.Name()] = full
				stagedAt[a.Name()] = len(vals)
				for _, v := range full {
					vals = append(vals, float64(v))
				}
			}
		}
	}
	if err := sh.Sum(vals); err != nil {
		return fmt.Errorf("sum counts across %d processes: %w", sh.Size, err)
	}
	c.n, c.clean, c.worst = int(vals[0]), int(vals[1]), int(vals[2])
	for i := range c.robust {
		c.robust[i] = int(vals[3+i])
	}
	for name, at := range stagedAt {
		for j := range c.stages[name] {
			c.stages[name][j] = int(vals[at+j])
		}
	}
	return nil
}

// sanityChecks are AutoAttack's checks on one batch: a randomised model,
// probabilities instead of logits, and samples with zero gradients.
func sanityChecks(m Model, x, y *ts.Tensor) []string {
	var out []string
	var s scope
	defer s.free()

	// Randomised: logits of repeated passes differ (compared after scaling
	// each row to unit norm, as the reference does).
	var outs []*ts.Tensor
	for range 3 {
		z := s.keep(logits(m, x))
		outs = append(outs, s.unit(z, L2))
	}
	maxDiff := 0.0
	for i := 1; i < len(outs); i++ {
		d := s.norms(s.t(outs[i].Sub(outs[0], false)), L2)
		maxDiff = max(maxDiff, floats(s.t(d.Max(false)))[0])
	}
	if maxDiff > 1e-4 {
		out = append(out, fmt.Sprintf("the model looks randomised: repeated forward passes on the same inputs differ (by %.3g after scaling the logits to unit norm); gradient attacks under-estimate the robustness of a randomised model's average, so use expectation over transformation or a deterministic model", maxDiff))
	}

	// Probabilities: every output in [0,1] and every row summing to 1.
	z := s.keep(logits(m, x))
	lo, hi := floats(s.t(z.Min(false)))[0], floats(s.t(z.Max(false)))[0]
	sums := floats(s.t(z.SumDimIntlist([]int64{1}, false, z.DType(), false)))
	probs := lo > -1e-5 && hi < 1+1e-5
	for _, v := range sums {
		if v < 1-1e-5 || v > 1+1e-5 {
			probs = false
		}
	}
	if probs {
		out = append(out, "the model's outputs look like probabilities (all in [0,1], each row summing to 1), not logits: the attacks' losses need logits, so remove the final softmax")
	}

	// Zero gradients of the cross-entropy at the clean inputs.
	zc, l, g := inputGrad(m, x, ceLoss(y))
	s.held = append(s.held, zc, l, g)
	gnorm := s.t(s.t(s.flat(g).Abs(false)).SumDimIntlist([]int64{1}, false, g.DType(), false))
	zero := count(s.t(gnorm.Eq(scalar(0), false)))
	if zero > 0 {
		out = append(out, fmt.Sprintf("%d of %d samples have an exactly zero input gradient of the cross-entropy: gradient attacks cannot move them, so their robustness may be overestimated (saturated softmax or masked gradients)", zero, size(x)[0]))
	}
	return out
}

// squareWarnings flag the black-box Square attack doing better than the
// white-box attacks, a sign of masked gradients (reference threshold: 0.2
// percentage points).
func squareWarnings(rep Report) []string {
	const slack = 0.002
	var out []string
	square := string(attackname.Square)
	if sq, ok := rep.PerAttack[square]; ok {
		best, name := 2.0, ""
		for _, a := range rep.Attacks {
			if a == square || rep.Stages[a] != nil {
				continue
			}
			if acc := rep.PerAttack[a]; acc < best {
				best, name = acc, a
			}
		}
		if name != "" && sq < best-slack {
			out = append(out, fmt.Sprintf("the black-box Square attack beat the white-box attacks (robust accuracy %.2f%% vs %.2f%% for %s): gradients may be masked and the evaluation unreliable; try more restarts, more Square queries or an adaptive attack", 100*sq, 100*best, name))
		}
	}
	for name, st := range rep.Stages {
		for j := 1; j < len(st); j++ {
			if st[j].Attack == square && st[j].RobustAcc < st[j-1].RobustAcc-slack {
				out = append(out, fmt.Sprintf("in %s, Square fooled samples the white-box attacks could not (robust accuracy %.2f%% before it, %.2f%% after): gradients may be masked and the evaluation unreliable", name, 100*st[j-1].RobustAcc, 100*st[j].RobustAcc))
			}
		}
	}
	return out
}
