// Package archtest generates random valid specs for property tests of arch
// and of the packages that build specs.
package archtest

import (
	"math/rand/v2"

	"github.com/robarch/robarch/arch"
)

// RandomSpec returns a small valid spec drawn from r: every option of the
// design space can appear, widths and inputs stay small enough to build and
// run quickly on a CPU. Use a seeded r for reproducible tests.
func RandomSpec(r *rand.Rand) arch.Spec {
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	s := arch.Spec{
		Name:    "random",
		Naming:  pick([]string{arch.NamingRobArch, arch.NamingTorchvision}),
		Classes: 2 + r.IntN(9),
	}
	s.Input.Channels = 1 + r.IntN(3)
	s.Input.Height = 16 + r.IntN(17)
	s.Input.Width = 16 + r.IntN(17)
	if r.IntN(2) == 0 {
		for range s.Input.Channels {
			s.Input.Mean = append(s.Input.Mean, r.Float64())
			s.Input.Std = append(s.Input.Std, 0.1+r.Float64())
		}
	}
	s.Stem.Width = 4 * (1 + r.IntN(6))
	if r.IntN(4) == 0 {
		s.Stem.Kind = arch.StemPatch
		s.Stem.Kernel = 1 + r.IntN(3)
	} else {
		s.Stem.Kind = arch.StemConv
		s.Stem.Kernel = []int{1, 3, 5, 7}[r.IntN(4)]
		s.Stem.Stride = 1 + r.IntN(2)
		s.Stem.MaxPool = r.IntN(3) == 0
	}
	stages := 1 + r.IntN(3)
	for i := range stages {
		st := arch.Stage{
			Depth:    1 + r.IntN(3),
			Block:    pick(arch.BlockKinds),
			Stride:   1 + r.IntN(2),
			Kernel:   []int{1, 3, 5}[r.IntN(3)],
			Dilation: 1 + r.IntN(2),
		}
		if i == 0 {
			st.Stride = 1 // keep feature maps from vanishing on 16×16 inputs
		}
		if st.Block == arch.Basic {
			st.Width = 4 * (1 + r.IntN(8))
			st.BottleneckMultiplier = 1
		} else {
			st.BottleneckMultiplier = []float64{0.25, 0.5, 1, 2}[r.IntN(4)]
			st.Width = 8 * (1 + r.IntN(6))
			mid := arch.BottleneckWidth(st.Width, st.BottleneckMultiplier)
			// A random divisor of the bottleneck width, or 0.
			if r.IntN(2) == 0 {
				var divs []int
				for d := 1; d <= mid; d++ {
					if mid%d == 0 {
						divs = append(divs, d)
					}
				}
				st.GroupWidth = divs[r.IntN(len(divs))]
			}
		}
		s.Stages = append(s.Stages, st)
	}
	b := &s.Block
	b.Order = pick(arch.Orders)
	b.Activations = []string{pick(arch.Activations), pick(arch.Activations), pick(arch.Activations)}
	b.Norms = []string{pick(arch.Norms), pick(arch.Norms), pick(arch.Norms)}
	b.NormGroups = []int{1, 2, 4, 32}[r.IntN(4)]
	b.ShortcutNorm = pick(arch.Norms)
	if r.IntN(2) == 0 {
		b.SERatio = []float64{0.25, 0.5, 1}[r.IntN(3)]
		b.SEActivation = pick(arch.Activations)
	}
	if r.IntN(3) == 0 {
		b.DenseRatio = 1 + r.IntN(2)
		// Dense connections need deep stages to matter.
		for i := range s.Stages {
			s.Stages[i].Depth += 3
		}
	}
	return s.WithDefaults()
}
