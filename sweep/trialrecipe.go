package sweep

import (
	"fmt"

	"github.com/robarch/robarch/internal/attackname"
	"github.com/robarch/robarch/recipe"
)

// DefaultAttack is eval.attacks when a file gives none: the cross-entropy
// PGD with the recipe's default final steps (pgd20).
var DefaultAttack = attackname.PGDSteps(recipe.DefaultFinalSteps).String()

// TrialRecipe is the recipe a trial of f with this seed trains and is
// finally evaluated with: the file's train section as written, with the
// keys the sweep sets for every trial (SetBySweep) taken from its own:
// the seed, eval.eps, eval.size, and as final steps those of the
// strongest cross-entropy pgdK in eval.attacks (recipe.DefaultFinalSteps
// when it lists none). train.batch_shards defaults to nproc_per_trial,
// written out so that the stored recipe says it. train.precision is left
// as written: auto is resolved on the machine that runs the trial.
//
// The other attacks of eval.attacks (pgdK-cw included), canonically
// spelt, are returned for the trial's robust evaluator. The file was
// validated at load, so every name parses; the error is for a File built
// in code.
func (f *File) TrialRecipe(seed int64) (recipe.Recipe, []string, error) {
	r := f.Train
	r.Seed = seed
	r.EvalEps = f.Eval.Eps
	r.FinalSize = f.Eval.Size
	steps := 0
	var extra []string
	for i, a := range f.Eval.Attacks {
		n, err := attackname.Parse(a)
		if err != nil {
			return r, nil, fmt.Errorf("eval.attacks[%d]: %w", i, err)
		}
		if n.IsCEPGD() {
			steps = max(steps, n.Steps)
			continue
		}
		extra = append(extra, n.String())
	}
	if steps == 0 {
		steps = recipe.DefaultFinalSteps
	}
	r.FinalSteps = steps
	if f.NprocPerTrial > 1 && r.BatchShards == 0 {
		r.BatchShards = f.NprocPerTrial
	}
	return r, extra, nil
}
