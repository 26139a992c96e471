// Package archtest generates random valid specs for property tests of arch
// and of the packages that build specs.
package archtest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/robarch/robarch/arch"
)

// SeedEnv names the environment variable that shifts every property
// test's random draws: unset or 0 gives the fixed specs the tests were
// written against; ROBARCH_SPEC_SEED=3 go test ./arch/... draws others,
// to look for failures the fixed draws miss.
const SeedEnv = "ROBARCH_SPEC_SEED"

// Rand returns the generator a property test draws its specs from: PCG
// seeded with (a, b), b shifted by SeedEnv. It panics on a malformed
// SeedEnv, which is a mistake of whoever runs the tests.
func Rand(a, b uint64) *rand.Rand {
	shift := uint64(0)
	if v := os.Getenv(SeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("archtest: %s=%q: want a non-negative integer", SeedEnv, v))
		}
		shift = n
	}
	return rand.New(rand.NewPCG(a, b+shift*0x9e3779b97f4a7c15))
}

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
		b.SEActivation = pick(arch.SEActivations)
	}
	b.SEWidthFrom = pick(arch.SEWidthRefs)
	if r.IntN(3) == 0 {
		b.DenseRatio = 1 + r.IntN(2)
		// Dense connections need deep stages to matter.
		for i := range s.Stages {
			s.Stages[i].Depth += 3
		}
	}
	if r.IntN(4) == 0 {
		b.ShortcutKernel = 3
	}
	if b.Order == arch.PreAct && r.IntN(4) == 0 {
		b.ShortcutInput = arch.ShortcutRaw
	}
	if r.IntN(3) == 0 {
		wideResNet(r, &s)
	}
	return s.WithDefaults()
}

// wideResNet turns s into a spec RobustBench's namings can name
// (pre-activation basic blocks, bare projection shortcuts, a plain stem)
// with the options those networks use drawn at random: grouped
// convolutions, SE after the first or last convolution, asymmetric
// padding, DMPreActResNet's 3×3 shortcut on the raw input.
func wideResNet(r *rand.Rand, s *arch.Spec) {
	s.Naming = []string{arch.NamingRBWRN, arch.NamingRBDM, arch.NamingRBDMPreAct}[r.IntN(3)]
	s.Stem.Kind, s.Stem.Stride, s.Stem.MaxPool = arch.StemConv, 1, false
	if s.Stem.Kernel%2 == 0 {
		s.Stem.Kernel = 3
	}
	b := &s.Block
	b.Order, b.ShortcutNorm, b.DenseRatio = arch.PreAct, arch.Identity, 0
	if s.Naming != arch.NamingRBDM {
		b.SERatio = 0
	}
	b.ShortcutKernel, b.ShortcutInput = 1, arch.ShortcutPreAct
	if s.Naming == arch.NamingRBDMPreAct {
		b.ShortcutKernel, b.ShortcutInput = 3, arch.ShortcutRaw
	}
	b.SEPosition = []string{arch.SELast, arch.SEFirst}[r.IntN(2)]
	asym := r.IntN(2) == 0
	if asym {
		b.Padding = arch.PadAsymmetric
		// Even maps at every strided block (the first stage keeps
		// stride 1, so at most two halvings follow).
		s.Input.Height, s.Input.Width = 8*(2+r.IntN(3)), 8*(2+r.IntN(3))
	}
	in := s.Stem.Width
	for i := range s.Stages {
		st := &s.Stages[i]
		st.Block, st.BottleneckMultiplier, st.GroupWidth = arch.Basic, 1, 0
		st.Width = 4 * (1 + r.IntN(8))
		if asym {
			st.Kernel, st.Dilation = 3, 1
		}
		// Groups dividing both the stage's input and output widths.
		var divs []int
		for g := 1; g <= min(in, st.Width); g++ {
			if in%g == 0 && st.Width%g == 0 {
				divs = append(divs, g)
			}
		}
		st.Groups = divs[r.IntN(len(divs))]
		if s.Naming == arch.NamingRBDMPreAct {
			st.Groups = 0
		}
		in = st.Width
	}
}
