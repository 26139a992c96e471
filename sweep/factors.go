package sweep

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/robarch/robarch/arch"
)

// A factor changes one component of a spec to a level. Levels are strings
// so that sweep files, the store and the report treat every factor alike.
// parts names what of a network the factor controls and transplant
// copies those parts from a spec built at one of its levels (Transplant);
// tests check that it copies them and nothing else.
type factor struct {
	help       string
	apply      func(s *arch.Spec, level string) error
	parts      []string
	transplant func(dst *arch.Spec, donor arch.Spec, groups []int) error
}

// Factor names: the guidelines report maps the RobArch paper's findings to
// these, so renaming one is a breaking change.
const (
	FactorDepthWidth     = "depth_width"
	FactorStageDepths    = "stage_depths"
	FactorKernel         = "kernel"
	FactorActivation     = "activation"
	FactorSERatio        = "se_ratio"
	FactorNorm           = "norm"
	FactorStemWidth      = "stem_width"
	FactorStemType       = "stem_type"
	FactorDownsample     = "downsample"
	FactorBottleneckMult = "bottleneck_mult"
	FactorGroupWidth     = "group_width"
	FactorDenseRatio     = "dense_ratio"
	FactorPreact         = "preact"
	FactorDilation       = "dilation"
	FactorStemKernel     = "stem_kernel"
	FactorSpec           = "spec"
)

// RecipeLevel is the spec factor's level that applies the RobArch paper's
// recipe to the sweep's baseline (see PaperRecipe).
const RecipeLevel = "robarch-recipe"

var factors = map[string]factor{
	FactorDepthWidth: {
		help: `depth multiplier before widths are refitted to the budget: "x1.5", "deeper-narrower" (x1.5), "shallower-wider" (x0.67)`,
		apply: func(s *arch.Spec, level string) error {
			m, err := DepthMultiplier(level)
			if err != nil {
				return err
			}
			for i := range s.Stages {
				s.Stages[i].Depth = max(1, int(math.Round(float64(s.Stages[i].Depth)*m)))
			}
			return nil
		},
		parts:      []string{PartDepths},
		transplant: copyDepths,
	},
	FactorStageDepths: {
		help: `depth of every stage, comma-separated: "3,4,6,3"`,
		apply: func(s *arch.Spec, level string) error {
			ds, err := IntList(level)
			if err != nil {
				return err
			}
			if len(ds) != len(s.Stages) {
				return fmt.Errorf("want %d depths (one per stage), got %d", len(s.Stages), len(ds))
			}
			s.SetDepths(ds...)
			return nil
		},
		parts:      []string{PartDepths},
		transplant: copyDepths,
	},
	FactorKernel: {
		help: `k×k kernel of every block: "3", "5", "7"`,
		apply: func(s *arch.Spec, level string) error {
			k, err := strconv.Atoi(level)
			if err != nil {
				return fmt.Errorf("want an odd integer kernel size")
			}
			s.SetKernel(k)
			return nil
		},
		parts:      []string{PartKernel},
		transplant: perStage(func(d *arch.Stage, s arch.Stage) { d.Kernel = s.Kernel }),
	},
	FactorActivation: {
		help: `activation at all three block positions ("silu"), or one per position ("relu,silu,silu")`,
		apply: func(s *arch.Spec, level string) error {
			acts, err := perPosition(level, arch.Activations)
			if err != nil {
				return err
			}
			s.Block.Activations = acts
			return nil
		},
		parts:      []string{PartActivations},
		transplant: copyBlock(func(d *arch.Block, s arch.Block) { d.Activations = slices.Clone(s.Activations) }),
	},
	FactorSERatio: {
		help: `squeeze-and-excitation ratio: "0" (off), "0.25"`,
		apply: func(s *arch.Spec, level string) error {
			r, err := strconv.ParseFloat(level, 64)
			if err != nil {
				return fmt.Errorf("want a ratio such as 0.25")
			}
			s.Block.SERatio = r
			return nil
		},
		parts:      []string{PartSE},
		transplant: copyBlock(func(d *arch.Block, s arch.Block) { d.SERatio, d.SEActivation = s.SERatio, s.SEActivation }),
	},
	FactorNorm: {
		help: `norm at all three positions ("batchnorm"), one per position ("identity,batchnorm,batchnorm"), or "shortcut:identity"`,
		apply: func(s *arch.Spec, level string) error {
			if rest, ok := strings.CutPrefix(level, "shortcut:"); ok {
				if !slices.Contains(arch.Norms, rest) {
					return fmt.Errorf("shortcut norm %q: want one of %s", rest, strings.Join(arch.Norms, ", "))
				}
				s.Block.ShortcutNorm = rest
				return nil
			}
			norms, err := perPosition(level, arch.Norms)
			if err != nil {
				return err
			}
			s.Block.Norms = norms
			return nil
		},
		parts: []string{PartNorms},
		transplant: copyBlock(func(d *arch.Block, s arch.Block) {
			d.Norms = slices.Clone(s.Norms)
			d.ShortcutNorm, d.NormGroups = s.ShortcutNorm, s.NormGroups
		}),
	},
	FactorStemWidth: {
		help: `stem output channels: "64", "96"`,
		apply: func(s *arch.Spec, level string) error {
			w, err := strconv.Atoi(level)
			if err != nil || w <= 0 {
				return fmt.Errorf("want a positive channel count")
			}
			s.Stem.Width = w
			return nil
		},
		parts:      []string{PartStemWidth},
		transplant: func(dst *arch.Spec, d arch.Spec, _ []int) error { dst.Stem.Width = d.Stem.Width; return nil },
	},
	FactorStemType: {
		help: `"conv" (as the baseline) or "patchify" / "patchify:K" (K×K conv, stride K; K defaults to the conv stem's total downsampling, at least 2)`,
		apply: func(s *arch.Spec, level string) error {
			if level == arch.StemConv {
				return nil
			}
			kind, k, _ := strings.Cut(level, ":")
			if kind != arch.StemPatch {
				return fmt.Errorf("want conv, patchify or patchify:K")
			}
			size := s.Stem.Stride
			if s.Stem.MaxPool {
				size *= 2
			}
			size = max(size, 2)
			if k != "" {
				n, err := strconv.Atoi(k)
				if err != nil || n < 1 {
					return fmt.Errorf("patchify:K wants a positive K")
				}
				size = n
			}
			s.Stem = arch.Stem{Kind: arch.StemPatch, Width: s.Stem.Width, Kernel: size}
			return nil
		},
		parts:      []string{PartStemLayout, PartStemKernel},
		transplant: copyStemType,
	},
	FactorDownsample: {
		help: `"postponed" (drop the stem's max-pool, stride 2 in stage 1, as RobArch) or per-stage strides "1,2,2,2"`,
		apply: func(s *arch.Spec, level string) error {
			if level == "postponed" {
				if !s.Stem.MaxPool {
					return fmt.Errorf("postponed: the baseline stem has no max-pool to postpone")
				}
				s.Stem.MaxPool = false
				s.Stages[0].Stride = max(1, s.Stages[0].Stride) * 2
				return nil
			}
			strides, err := IntList(level)
			if err != nil {
				return err
			}
			if len(strides) != len(s.Stages) {
				return fmt.Errorf("want %d strides (one per stage), got %d", len(s.Stages), len(strides))
			}
			for i, st := range strides {
				s.Stages[i].Stride = st
			}
			return nil
		},
		parts:      []string{PartStemLayout, PartStrides},
		transplant: copyDownsampling,
	},
	FactorBottleneckMult: {
		help: `bottleneck multiplier of every stage: "0.25", "0.5", "4" (inverted)`,
		apply: func(s *arch.Spec, level string) error {
			m, err := strconv.ParseFloat(level, 64)
			if err != nil || m <= 0 {
				return fmt.Errorf("want a positive multiplier")
			}
			for i := range s.Stages {
				s.Stages[i].BottleneckMultiplier = m
			}
			return nil
		},
		parts:      []string{PartBottleneck},
		transplant: perStage(func(d *arch.Stage, s arch.Stage) { d.BottleneckMultiplier = s.BottleneckMultiplier }),
	},
	FactorGroupWidth: {
		help: `"groups:N" (N groups in every k×k conv) or a group width in channels "64"; "0" is one group`,
		apply: func(s *arch.Spec, level string) error {
			if rest, ok := strings.CutPrefix(level, "groups:"); ok {
				g, err := strconv.Atoi(rest)
				if err != nil || g < 1 {
					return fmt.Errorf("groups:N wants N >= 1")
				}
				for i, st := range s.Stages {
					bw := arch.BottleneckWidth(st.Width, st.BottleneckMultiplier)
					if bw%g != 0 {
						return fmt.Errorf("stage %d bottleneck width %d is not divisible by %d groups", i, bw, g)
					}
					s.Stages[i].GroupWidth = bw / g
				}
				return nil
			}
			gw, err := strconv.Atoi(level)
			if err != nil || gw < 0 {
				return fmt.Errorf("want groups:N or a group width >= 0")
			}
			for i := range s.Stages {
				s.Stages[i].GroupWidth = gw
			}
			return nil
		},
		parts:      []string{PartGroups},
		transplant: copyGroups,
	},
	FactorDenseRatio: {
		help: `earlier blocks added into later ones in a stage: "0" (off), "1", "2"`,
		apply: func(s *arch.Spec, level string) error {
			r, err := strconv.Atoi(level)
			if err != nil || r < 0 {
				return fmt.Errorf("want an integer >= 0")
			}
			s.Block.DenseRatio = r
			return nil
		},
		parts:      []string{PartDense},
		transplant: copyBlock(func(d *arch.Block, s arch.Block) { d.DenseRatio = s.DenseRatio }),
	},
	FactorDilation: {
		help: `dilation of every block's k×k convolution: "1", "2"`,
		apply: func(s *arch.Spec, level string) error {
			d, err := strconv.Atoi(level)
			if err != nil || d < 1 {
				return fmt.Errorf("want a positive integer dilation")
			}
			for i := range s.Stages {
				s.Stages[i].Dilation = d
			}
			return nil
		},
		parts:      []string{PartDilation},
		transplant: perStage(func(d *arch.Stage, s arch.Stage) { d.Dilation = s.Dilation }),
	},
	FactorStemKernel: {
		help: `kernel of a conv stem: "3", "5", "7" (ResNet-50's)`,
		apply: func(s *arch.Spec, level string) error {
			k, err := strconv.Atoi(level)
			if err != nil || k < 1 || k%2 == 0 {
				return fmt.Errorf("want an odd positive kernel size")
			}
			if s.Stem.Kind != arch.StemConv {
				return fmt.Errorf("the baseline's stem is %s; stem_kernel changes a conv stem", s.Stem.Kind)
			}
			s.Stem.Kernel = k
			return nil
		},
		parts:      []string{PartStemKernel},
		transplant: func(dst *arch.Spec, d arch.Spec, _ []int) error { dst.Stem.Kernel = d.Stem.Kernel; return nil },
	},
	FactorSpec: {
		help: `a whole alternative network, refitted to the budget: "` + RecipeLevel + `" (the RobArch paper's recipe applied to the baseline), a preset name ("micro") or a spec file ("specs/mine.yaml"); input and classes stay the baseline's`,
		apply: func(s *arch.Spec, level string) error {
			if level == RecipeLevel {
				return PaperRecipe(s)
			}
			alt, err := arch.GetOrLoad(level)
			if err != nil {
				return err
			}
			alt = alt.WithDefaults()
			alt.Input, alt.Classes = s.Input, s.Classes
			*s = alt
			return nil
		},
		// A whole alternative network replaces everything the others change.
		parts:      AllParts,
		transplant: copyWhole,
	},
	FactorPreact: {
		help: `"true" (pre-activation blocks) or "false"`,
		apply: func(s *arch.Spec, level string) error {
			b, err := strconv.ParseBool(level)
			if err != nil {
				return fmt.Errorf("want true or false")
			}
			s.Block.Order = arch.PostAct
			if b {
				s.Block.Order = arch.PreAct
			}
			return nil
		},
		parts:      []string{PartOrder},
		transplant: copyBlock(func(d *arch.Block, s arch.Block) { d.Order = s.Order }),
	},
}

// FactorNames lists the factors a sweep can vary.
func FactorNames() []string {
	names := make([]string, 0, len(factors))
	for n := range factors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// FactorHelp describes a factor's levels.
func FactorHelp(name string) string { return factors[name].help }

// ApplyLevel returns a copy of s with the factor set to the level.
func ApplyLevel(s arch.Spec, name, level string) (arch.Spec, error) {
	f, ok := factors[name]
	if !ok {
		return arch.Spec{}, fmt.Errorf("factor %q: want one of %s", name, strings.Join(FactorNames(), ", "))
	}
	out := s.WithDefaults()
	if err := f.apply(&out, strings.TrimSpace(level)); err != nil {
		return arch.Spec{}, fmt.Errorf("factor %s level %q: %w (levels: %s)", name, level, err, f.help)
	}
	return out, nil
}

// DepthMultiplier reads a depth_width level: "deeper-narrower" (×1.5),
// "shallower-wider" (×2/3) or "xM" (M > 0).
func DepthMultiplier(level string) (float64, error) {
	switch level {
	case "deeper-narrower":
		return 1.5, nil
	case "shallower-wider":
		return 2.0 / 3.0, nil
	}
	m, err := strconv.ParseFloat(strings.TrimPrefix(level, "x"), 64)
	if err != nil || m <= 0 {
		return 0, fmt.Errorf("want xM (M > 0), deeper-narrower or shallower-wider")
	}
	return m, nil
}

// IntList reads a level written as comma-separated positive integers
// ("3,4,12,1"), as stage_depths and downsample levels are.
func IntList(level string) ([]int, error) {
	parts := strings.Split(level, ",")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want comma-separated positive integers")
		}
		out[i] = n
	}
	return out, nil
}

func perPosition(level string, allowed []string) ([]string, error) {
	parts := strings.Split(level, ",")
	if len(parts) == 1 {
		parts = []string{parts[0], parts[0], parts[0]}
	}
	if len(parts) != 3 {
		return nil, fmt.Errorf("want one value or three (one per block position)")
	}
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if !slices.Contains(allowed, parts[i]) {
			return nil, fmt.Errorf("%q: want one of %s", parts[i], strings.Join(allowed, ", "))
		}
	}
	return parts, nil
}
