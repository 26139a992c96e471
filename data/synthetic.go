package data

import "fmt"

// Synthetic data: every class has a fixed blocky pattern (a coarse grid of
// random intensities per channel, blown up to H×W); each example is that
// pattern mixed with uniform noise. The signal is strong enough that a tiny
// conv net separates the classes within a few dozen steps, so tests can
// check that training learns. It is for tests only, never a stand-in for
// real data.
const (
	syntheticGrid   = 4    // pattern cells per side
	syntheticSignal = 0.65 // weight of the class pattern; the rest is noise
)

// SyntheticConfig fixes the class patterns; the same config generates
// train and test splits that share patterns but not examples.
type SyntheticConfig struct {
	Classes, C, H, W int
	Seed             int64
}

func (s SyntheticConfig) validate() error {
	if s.Classes < 1 || s.C < 1 || s.H < 1 || s.W < 1 {
		return fmt.Errorf("synthetic config classes=%d c=%d h=%d w=%d: all must be positive", s.Classes, s.C, s.H, s.W)
	}
	return nil
}

// Synthetic generates n training examples with the given shape and seed.
func Synthetic(n, classes, c, h, w int, seed int64) (*Dataset, error) {
	return SyntheticConfig{Classes: classes, C: c, H: h, W: w, Seed: seed}.Generate(n, Train)
}

// Generate makes n examples of one split; labels are balanced (each class
// gets n/Classes or one more) and in seeded random order.
func (s SyntheticConfig) Generate(n int, split Split) (*Dataset, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if err := split.validate(); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("synthetic n=%d: must not be negative", n)
	}
	patterns := s.patterns()
	stream := streamSyntheticTrain
	if split == Test {
		stream = streamSyntheticTest
	}
	rng := newRand(s.Seed, stream)
	size := s.C * s.H * s.W
	d := &Dataset{Images: make([]uint8, n*size), Labels: make([]int64, n), N: n, C: s.C, H: s.H, W: s.W, Classes: s.Classes}
	for i, p := range rng.Perm(n) {
		d.Labels[i] = int64(p % s.Classes)
	}
	for i := range n {
		pattern := patterns[d.Labels[i]]
		img := d.Image(i)
		for j := range img {
			v := syntheticSignal*pattern[j] + (1-syntheticSignal)*rng.Float32()
			img[j] = unitToByte(v)
		}
	}
	return d, d.Validate()
}

// patterns returns one C×H×W pattern in [0,1] per class.
func (s SyntheticConfig) patterns() [][]float32 {
	rng := newRand(s.Seed, streamSyntheticPatterns)
	out := make([][]float32, s.Classes)
	for k := range out {
		grid := make([]float32, s.C*syntheticGrid*syntheticGrid)
		for j := range grid {
			grid[j] = rng.Float32()
		}
		p := make([]float32, s.C*s.H*s.W)
		for ch := range s.C {
			for y := range s.H {
				gy := y * syntheticGrid / s.H
				for x := range s.W {
					gx := x * syntheticGrid / s.W
					p[(ch*s.H+y)*s.W+x] = grid[(ch*syntheticGrid+gy)*syntheticGrid+gx]
				}
			}
		}
		out[k] = p
	}
	return out
}
