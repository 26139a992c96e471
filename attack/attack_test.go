package attack

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Test budgets: far below the papers' (100 iterations, 5000 queries) so
// the package's tests stay fast; the attacks' logic is the same.
const (
	epsLinf = 0.07
	epsL2   = 0.7
)

func testAttacks() []Attack {
	return []Attack{
		FGSM{Eps: epsLinf},
		FGSM{Norm: L2, Eps: epsL2},
		PGD{Eps: epsLinf, Steps: 10, RandomStart: true, Seed: 1},
		PGD{Eps: epsLinf, Steps: 10, Loss: CW, Seed: 1},
		PGD{Eps: epsLinf, Steps: 10, Loss: DLR, RandomStart: true, Restarts: 2, Seed: 1},
		PGD{Norm: L2, Eps: epsL2, Steps: 10, RandomStart: true, Seed: 1},
		APGD{Eps: epsLinf, Steps: 20, Seed: 1},
		APGD{Norm: L2, Eps: epsL2, Steps: 20, Seed: 1},
		APGD{Eps: epsLinf, Steps: 20, Loss: DLR, Seed: 1},
		APGD{Eps: epsLinf, Steps: 20, Targeted: true, Targets: 3, Seed: 1},
		APGD{Norm: L2, Eps: epsL2, Steps: 20, Targeted: true, Targets: 3, Seed: 1},
		FAB{Eps: epsLinf, Steps: 20, Targets: 3, Seed: 1},
		FAB{Norm: L2, Eps: epsL2, Steps: 20, Targets: 3, Restarts: 2, Seed: 1},
		// Random search needs a larger radius to do much in 300 queries.
		Square{Eps: 0.1, Queries: 300, Seed: 1},
		Square{Norm: L2, Eps: 1.5, Queries: 300, Seed: 1},
		&AutoAttack{Eps: epsLinf, Steps: 10, Targets: 2, Queries: 100, Seed: 1},
		&AutoAttack{Version: Fast, Norm: L2, Eps: epsL2, Steps: 10, Targets: 2, Seed: 1},
	}
}

func normOf(a Attack) (Norm, float64) {
	switch a := a.(type) {
	case FGSM:
		return a.pgd().withDefaults().Norm, a.Eps
	case PGD:
		return a.withDefaults().Norm, a.Eps
	case APGD:
		return a.withDefaults().Norm, a.Eps
	case FAB:
		return a.withDefaults().Norm, a.Eps
	case Square:
		return a.withDefaults().Norm, a.Eps
	case *AutoAttack:
		return a.withDefaults().Norm, a.Eps
	}
	panic("unknown attack")
}

func TestAttacksLowerAccuracyWithinTheBall(t *testing.T) {
	f := trained(t, 10)
	n := int(size(f.x)[0])
	require.GreaterOrEqual(t, f.cleanRight, n*85/100, "the tiny model should learn the synthetic task")
	for _, a := range testAttacks() {
		norm, eps := normOf(a)
		t.Run(a.Name()+"-"+string(norm), func(t *testing.T) {
			onTorch(t, func() error {
				before := f.x.MustShallowClone()
				defer before.MustDrop()
				xCopy := f.x.MustDetachCopy(false)
				defer xCopy.MustDrop()
				adv, err := a.Perturb(f.net.model(), f.x, f.y)
				require.NoError(t, err)
				defer adv.MustDrop()

				assert.Equal(t, size(f.x), size(adv))
				assert.Zero(t, maxAbsDiff(f.x, xCopy), "x must not change")
				for i, d := range perSampleNorms(adv, f.x, norm) {
					require.LessOrEqual(t, d, eps+1e-6, "sample %d outside the %s ball", i, norm)
				}
				lo, hi := floats(adv.MustMin(false))[0], floats(adv.MustMax(false))[0]
				assert.GreaterOrEqual(t, lo, 0.0)
				assert.LessOrEqual(t, hi, 1.0)
				assert.Zero(t, f.net.gradSum(), "the attack must not leave gradients in the model")

				robust := countRight(f.net.model(), adv, f.y)
				t.Logf("%s %s: clean %d/%d robust %d", a.Name(), norm, f.cleanRight, n, robust)
				assert.Less(t, robust, f.cleanRight-n/5, "the attack should fool a clear share of the samples")
				return nil
			})
		})
	}
}
