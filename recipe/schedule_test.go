package recipe

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLRAt(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Recipe
		t    float64
		want float64
	}{
		// Fast-AT's cyclic schedule: 0 → peak at 2/5 of 10 epochs → 0.
		{"onecycle start", Recipe{Schedule: OneCycle, LR: 0.2, Epochs: 10, PeakAt: 0.4}, 0, 0},
		{"onecycle rising", Recipe{Schedule: OneCycle, LR: 0.2, Epochs: 10, PeakAt: 0.4}, 1, 0.05},
		{"onecycle peak", Recipe{Schedule: OneCycle, LR: 0.2, Epochs: 10, PeakAt: 0.4}, 4, 0.2},
		{"onecycle falling", Recipe{Schedule: OneCycle, LR: 0.2, Epochs: 10, PeakAt: 0.4}, 7, 0.1},
		{"onecycle end", Recipe{Schedule: OneCycle, LR: 0.2, Epochs: 10, PeakAt: 0.4}, 10, 0},
		{"onecycle past end", Recipe{Schedule: OneCycle, LR: 0.2, Epochs: 10, PeakAt: 0.4}, 12, 0},
		{"cosine start", Recipe{Schedule: Cosine, LR: 0.1, Epochs: 10}, 0, 0.1},
		{"cosine middle", Recipe{Schedule: Cosine, LR: 0.1, Epochs: 10}, 5, 0.05},
		{"cosine quarter", Recipe{Schedule: Cosine, LR: 0.1, Epochs: 10}, 2.5, 0.05 * (1 + math.Sqrt2/2)},
		{"cosine end", Recipe{Schedule: Cosine, LR: 0.1, Epochs: 10}, 10, 0},
		{"cosine warm-up", Recipe{Schedule: Cosine, LR: 0.1, Epochs: 10, WarmupEpochs: 2}, 1, 0.05},
		{"cosine after warm-up", Recipe{Schedule: Cosine, LR: 0.1, Epochs: 10, WarmupEpochs: 2}, 6, 0.05},
		{"step before", Recipe{Schedule: Step, LR: 0.1, Epochs: 200, Milestones: []float64{100, 150}, Gamma: 0.1}, 100, 0.1},
		{"step after first", Recipe{Schedule: Step, LR: 0.1, Epochs: 200, Milestones: []float64{100, 150}, Gamma: 0.1}, 100.01, 0.01},
		{"step after second", Recipe{Schedule: Step, LR: 0.1, Epochs: 200, Milestones: []float64{100, 150}, Gamma: 0.1}, 199, 0.001},
		{"constant", Recipe{Schedule: Constant, LR: 0.3, Epochs: 5}, 3.3, 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, tc.r.LRAt(tc.t), 1e-12)
		})
	}
}

// The default step milestones sit at half and three quarters of the run.
func TestStepDefaults(t *testing.T) {
	r := Recipe{Schedule: Step, Epochs: 8}.WithDefaults()
	assert.Equal(t, []float64{4, 6}, r.Milestones)
	assert.InDelta(t, 0.1, r.LRAt(4), 1e-12)
	assert.InDelta(t, 0.01, r.LRAt(4.5), 1e-12)
	assert.InDelta(t, 0.001, r.LRAt(7), 1e-12)
}
