package amp

import (
	"fmt"
	"unsafe"

	"github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// Scaler is dynamic loss scaling for fp16 training, as
// torch.cuda.amp.GradScaler: the loss is multiplied by Scale before the
// backward pass so that small fp16 gradients do not flush to zero; the
// gradients are divided by it again before the update; a step whose
// gradients hold an inf or NaN is skipped and the scale halved; after
// GrowthInterval good steps in a row the scale doubles. bf16 has fp32's
// exponent range and needs none.
type Scaler struct {
	Scale          float64
	GrowthFactor   float64
	BackoffFactor  float64
	GrowthInterval int
	// good counts the finite steps since the last change of scale;
	// Skipped all skipped steps.
	good    int
	Skipped int
}

// NewScaler has GradScaler's defaults: scale 2^16, ×2 after 2000 good
// steps, ×0.5 on an overflow.
func NewScaler() *Scaler {
	return &Scaler{Scale: 65536, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000}
}

// ScaleLoss returns loss × Scale (a new tensor in the graph).
func (s *Scaler) ScaleLoss(loss *ts.Tensor) (*ts.Tensor, error) {
	sc := ts.FloatScalar(s.Scale)
	defer sc.MustDrop()
	out, err := loss.MulScalar(sc, false)
	if err != nil {
		return nil, fmt.Errorf("scale loss: %w", err)
	}
	return out, nil
}

// Unscale divides the gradients of params (C tensor pointers, as
// ts.Tensor.Ctensor returns) by Scale in place, then updates the scale.
// It reports whether the step may go ahead: false when a gradient held
// an inf or NaN, in which case the gradients were set undefined.
func (s *Scaler) Unscale(params []unsafe.Pointer) (ok bool, err error) {
	found, err := libtch.RobarchUnscaleGrads(params, 1/s.Scale)
	if err != nil {
		return false, fmt.Errorf("unscale gradients: %w", err)
	}
	s.update(found)
	return !found, nil
}

// update is GradScaler.update: back off on an overflow, grow after
// GrowthInterval finite steps.
func (s *Scaler) update(foundInf bool) {
	if foundInf {
		s.Scale *= s.BackoffFactor
		s.good = 0
		s.Skipped++
		return
	}
	s.good++
	if s.good >= s.GrowthInterval {
		s.Scale *= s.GrowthFactor
		s.good = 0
	}
}
