package train

import (
	"fmt"
	"log/slog"

	"github.com/robarch/robarch/data"
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

// NewStepper prepares steps of recipe r (defaults filled in; Epochs may be
// left 0) on m, with the optimiser Run would build from r. Close frees the
// optimiser's state.
func NewStepper(m Model, r recipe.Recipe) (*Stepper, error) {
	if m.Net == nil || m.Vars == nil {
		return nil, fmt.Errorf("train stepper: model needs a network and its VarStore")
	}
	r = r.WithDefaults()
	if r.Epochs == 0 {
		r.Epochs = 1
	}
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
	t := &trainer{m: m, r: r, log: slog.Default(), device: m.Vars.Device(), vars: vars, opt: opt}
	if err := t.setPrecision(); err != nil {
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
