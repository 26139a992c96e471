package sweep

import (
	"fmt"
	"math"
	"slices"

	"github.com/robarch/robarch/arch"
)

// RobArch-S against ResNet-50 (RobArch code, MODEL.mk): 27 blocks instead
// of 16, split 5:8:13 over the first three stages with one block in the
// last; stem 96 wide instead of 64.
var (
	recipeDepthRatio = 27.0 / 16.0
	recipeShares     = []float64{5, 8, 13}
	recipeStemRatio  = 96.0 / 64.0
)

// PaperRecipe applies what RobArch-S changed in ResNet-50 to a four-stage
// bottleneck network s, scaled to s: total depth ×27/16 split 5:8:13:1,
// two groups in every k×k convolution, a stem 1.5× wider, its max-pool
// removed and the first stage's stride doubled instead (when it has one),
// SiLU at every block position, squeeze-and-excitation 0.25 with ReLU
// inside, and no norm after the first 1×1 convolution. Widths are left
// for the sweep's fit to the budget.
func PaperRecipe(s *arch.Spec) error {
	if len(s.Stages) != 4 {
		return fmt.Errorf("the recipe is RobArch-S's, for four stages; the baseline has %d", len(s.Stages))
	}
	for i, st := range s.Stages {
		if st.Block != arch.Bottleneck {
			return fmt.Errorf("the recipe needs bottleneck blocks; stage %d is %s", i, st.Block)
		}
	}
	total := int(math.Round(float64(sumInts(s.Depths())) * recipeDepthRatio))
	s.SetDepths(append(apportion(max(total-1, 3), recipeShares), 1)...)
	for i := range s.Stages {
		st := &s.Stages[i]
		bw := arch.BottleneckWidth(st.Width, st.BottleneckMultiplier)
		if bw%2 != 0 {
			return fmt.Errorf("stage %d bottleneck width %d cannot take two groups", i, bw)
		}
		st.GroupWidth = bw / 2
	}
	if s.Stem.Kind == arch.StemConv {
		s.Stem.Width = int(math.Round(float64(s.Stem.Width) * recipeStemRatio))
		if s.Stem.MaxPool {
			s.Stem.MaxPool = false
			s.Stages[0].Stride = max(1, s.Stages[0].Stride) * 2
		}
	}
	s.Block.Activations = []string{"silu", "silu", "silu"}
	s.Block.SERatio, s.Block.SEActivation = 0.25, "relu"
	norms := slices.Clone(s.Block.Norms)
	if len(norms) == 3 {
		norms[0] = arch.Identity
	}
	s.Block.Norms = norms
	return nil
}

// apportion splits n into len(shares) positive parts proportional to
// shares, by largest remainder (ties to the later part, the deeper stage).
func apportion(n int, shares []float64) []int {
	var total float64
	for _, w := range shares {
		total += w
	}
	out := make([]int, len(shares))
	rest := make([]float64, len(shares))
	used := 0
	for i, w := range shares {
		x := float64(n) * w / total
		out[i] = max(1, int(math.Floor(x)))
		rest[i] = x - math.Floor(x)
		used += out[i]
	}
	for used < n {
		best := 0
		for i := range rest {
			if rest[i] >= rest[best] {
				best = i
			}
		}
		out[best]++
		rest[best] = -1
		used++
	}
	return out
}

func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}
