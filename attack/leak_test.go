package attack

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/robarch/robarch/internal/torchrt"
)

// TestAttacksDropEveryTensor checks that an attack leaves no tensor handle
// behind but the result it returns. robarch's gotch build has no per-tensor
// Go ballast, so a forgotten handle's storage waits for a garbage
// collection that a small Go heap seldom triggers; inside an evaluation of
// thousands of batches that is a leak.
func TestAttacksDropEveryTensor(t *testing.T) {
	f := trained(t, 4)
	const eps = 0.1
	attacks := []Attack{
		FGSM{Eps: eps},
		FGSM{Norm: L2, Eps: 0.5},
		PGD{Eps: eps, Steps: 3, RandomStart: true, Seed: 1},
		PGD{Eps: eps, Steps: 3, RandomStart: true, Restarts: 2, Loss: CW, Seed: 1},
		PGD{Norm: L2, Eps: 0.5, Steps: 3, RandomStart: true, Loss: DLR, Seed: 1},
		APGD{Eps: eps, Steps: 10, Seed: 1},
		APGD{Eps: eps, Steps: 10, Loss: DLR, Restarts: 2, Seed: 1},
		APGD{Eps: eps, Steps: 10, Targeted: true, Targets: 2, Seed: 1},
		APGD{Norm: L2, Eps: 0.5, Steps: 10, Seed: 1},
		FAB{Eps: eps, Steps: 5, Targets: 2, Seed: 1},
		FAB{Norm: L2, Eps: 0.5, Steps: 5, Targets: 2, Seed: 1},
		Square{Eps: eps, Queries: 30, Seed: 1},
		Square{Norm: L2, Eps: 0.5, Queries: 30, Seed: 1},
		&AutoAttack{Version: Standard, Eps: eps, Seed: 1, Steps: 5, Targets: 2, Queries: 30},
	}
	for i, a := range attacks {
		t.Run(fmt.Sprintf("%02d-%s", i, a.Name()), func(t *testing.T) {
			var left int
			onTorch(t, func() (err error) {
				left, err = torchrt.TensorsLeftBy(func() error {
					for range 2 {
						adv, err := a.Perturb(f.net.model(), f.x, f.y)
						if err != nil {
							return err
						}
						drop(adv)
					}
					return nil
				})
				return err
			})
			assert.Zero(t, left, "tensor handles left alive by two runs of %s", a.Name())
		})
	}
}
