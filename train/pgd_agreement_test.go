package train

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/internal/torchrt"
)

// Training's inner maximisation (perturbCE) runs package attack's ascent
// (attack.Ascent) under training's policy: its own random start, its
// cross-entropy objective, its final clamp. With the same seed, mode and
// step it must give attack.PGD's adversarial examples, in evaluation mode
// (attack.FromModuleT) and in training mode (a Model that runs the
// network in training mode, as Fast-AT and PGD-AT attack): a change to
// either side's start, step, loss or projection fails here.
func TestTrainingPGDMatchesAttackPGD(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m := newModel(1)
	defer m.Vars.Destroy()
	torchrt.Seed(7)
	x, err := ts.Rand([]int64{16, 1, 16, 16}, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	defer x.MustDrop()
	y, err := ts.Randint(10, []int64{16}, gotch.Int64, gotch.CPU)
	require.NoError(t, err)
	defer y.MustDrop()

	for _, tc := range []struct {
		name        string
		eps, step   float64
		steps       int
		randomStart bool
		train       bool
	}{
		{"pgd10 random start", 8.0 / 255, 2.0 / 255, 10, true, false},
		{"pgd5 zero start", 0.1, 0.025, 5, false, false},
		{"fgsm-rs step", 0.1, 0.125, 1, true, false},
		{"pgd3 training mode", 0.1, 0.05, 3, true, true},
		{"fgsm-rs training mode", 0.1, 0.125, 1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			torchrt.Seed(11)
			ours, err := perturbCE(m.Net, x, y, linf{eps: tc.eps, step: tc.step, steps: tc.steps, randomStart: tc.randomStart, train: tc.train})
			require.NoError(t, err)
			defer ours.MustDrop()
			model := attack.FromModuleT(m.Net)
			if tc.train {
				model = func(x *ts.Tensor) (*ts.Tensor, error) { return m.Net.ForwardT(x, true), nil }
			}
			torchrt.Seed(11)
			theirs, err := attack.PGD{Norm: attack.Linf, Eps: tc.eps, StepSize: tc.step, Steps: tc.steps,
				RandomStart: tc.randomStart, KeepRNG: true}.Perturb(model, x, y)
			require.NoError(t, err)
			defer theirs.MustDrop()
			diff := ours.MustSub(theirs, false)
			defer diff.MustDrop()
			maxDiff := diff.MustAbs(true).MustMax(true).Float64Values()[0]
			// Equal up to the last bit of float32 rounding in the final
			// projection (attack enforces the ball once more).
			assert.LessOrEqual(t, maxDiff, 1e-6, "largest difference between the two PGDs' examples")
			moved := ours.MustSub(x, false)
			defer moved.MustDrop()
			assert.Greater(t, moved.MustAbs(true).MustMax(true).Float64Values()[0], 0.0, "the attack moved the inputs")
		})
	}
}
