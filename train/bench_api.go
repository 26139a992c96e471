package train

import (
	"fmt"
	"log/slog"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/recipe"
)

// Stepper runs the training loop's own step outside Run: the very code Run
// executes for every batch (batch to tensors, the recipe's loss with its
// inner maximisation for fgsm-rs, pgd and trades, backward, SGD update).
// It exists for benchmarks and profiling, which must time what training
// really does rather than a copy of it. Like Run, it needs the calling
// goroutine locked to its OS thread (runtime.LockOSThread).
type Stepper struct {
	t *trainer
}

// NewStepper prepares steps of recipe r (defaults filled in) on m, with
// the optimiser Run would build from r. Close frees the optimiser's state.
func NewStepper(m Model, r recipe.Recipe) (*Stepper, error) {
	return newStepper(m, r, nil)
}

// NewDataParallelStepper is NewStepper for one rank of g: the batches it
// is given are this rank's rows of each global batch (data.Part), r's
// BatchSize the global batch; each Step is Run's data-parallel step
// (shards, gradient allreduce, rank 0's batch-norm statistics broadcast),
// and every rank starts from rank 0's weights.
func NewDataParallelStepper(m Model, r recipe.Recipe, g *dist.Group) (*Stepper, error) {
	if g == nil {
		return nil, fmt.Errorf("train stepper: a data-parallel stepper needs a process group")
	}
	return newStepper(m, r, g)
}

func newStepper(m Model, r recipe.Recipe, g *dist.Group) (*Stepper, error) {
	if m.Net == nil || m.Vars == nil {
		return nil, fmt.Errorf("train stepper: model needs a network and its VarStore")
	}
	r = r.WithDefaults()
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("train stepper: %w", err)
	}
	vars, err := varsOf(m.Vars)
	if err != nil {
		return nil, fmt.Errorf("train stepper: %w", err)
	}
	opt, err := newSGD(vars, SGDConfig{Momentum: r.Momentum, Nesterov: r.Nesterov, WeightDecay: r.WeightDecay, GradClip: r.GradClip})
	if err != nil {
		releaseVars(vars)
		return nil, fmt.Errorf("train stepper: %w", err)
	}
	t := &trainer{m: m, r: r, log: slog.Default(), device: m.Vars.Device(), vars: vars, opt: opt, opts: Options{Group: g}}
	err = t.setPrecision()
	if err == nil {
		err = t.setupShards()
	}
	if err == nil {
		err = t.syncStart() // every rank from rank 0's weights
	}
	if err != nil {
		opt.Close()
		releaseVars(vars)
		return nil, fmt.Errorf("train stepper: %w", err)
	}
	return &Stepper{t: t}, nil
}

// Step trains on one batch with learning rate lr and returns the batch's
// mean loss and its number of correct predictions, as Run's loop does.
func (s *Stepper) Step(b *data.Batch, lr float64) (loss float64, correct int64, err error) {
	return s.t.step(b, lr)
}

// Close frees the optimiser's tensors and the stepper's variable handles.
func (s *Stepper) Close() {
	s.t.opt.Close()
	releaseVars(s.t.vars)
}
