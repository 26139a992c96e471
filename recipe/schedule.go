package recipe

import "math"

// LRAt returns the learning rate after t epochs of training (t may be
// fractional: step i of nb in epoch e is at t = e + (i+1)/nb, as in Fast-AT's
// reference code, so the first step of a one-cycle run is not at LR 0).
func (r Recipe) LRAt(t float64) float64 {
	total := float64(r.Epochs)
	t = min(max(t, 0), total)
	switch r.Schedule {
	case OneCycle:
		peak := r.PeakAt * total
		if t <= peak {
			return r.LR * t / peak
		}
		return r.LR * (total - t) / (total - peak)
	case Cosine:
		if t < r.WarmupEpochs {
			return r.LR * t / r.WarmupEpochs
		}
		frac := (t - r.WarmupEpochs) / (total - r.WarmupEpochs)
		return r.LR * 0.5 * (1 + math.Cos(math.Pi*frac))
	case Step:
		lr := r.LR
		for _, m := range r.Milestones {
			if t > m {
				lr *= r.Gamma
			}
		}
		return lr
	default:
		return r.LR
	}
}
