// Package paper holds the RobArch paper's 18 design guidelines as
// predictions about pairs of networks: given the spec a variant was built
// with and the spec it is compared with, each guideline says whether it
// expects robust accuracy to rise, fall, not rise, or has nothing to say.
// It reads specs, never level strings, and names the sweep factors that
// usually vary what it is about in package sweep's vocabulary. Package
// guidelines judges these predictions against a sweep's effects;
// `robarch sweep plan` lists which guidelines each planned variant bears on.
package paper

import (
	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/sweep"
)

// RatioBand is the width-to-depth ratio range of the follow-up paper
// (mean of width ÷ depth over all stages but the last), measured on
// basic-block WideResNets on CIFAR-10.
var RatioBand = [2]float64{7.5, 13.5}

// Source names where the built-in findings come from.
const Source = "Peng et al. 2023, RobArch: Designing Robust Architectures against Adversarial Attacks (arXiv:2301.03110), as rebuilt from its official code (ShengYun-Peng/RobArch) and the follow-up Robust Principles (Peng et al., BMVC 2023, arXiv:2308.16258)"

// Where the findings' claims come from (cited per row of the table).
const (
	srcModelMk = "RobArch code, MODEL.mk (RobArch-S/M/L configs)"
	srcYAML    = "RobArch code, configs/model/model.yaml (studied, ResNet-50's choice kept)"
	srcModelPy = "RobArch code, robustarch/models/model.py (option present, not adopted)"
	srcBMVC    = "Robust Principles, BMVC 2023 (arXiv:2308.16258)"
	srcSAT     = "Smooth Adversarial Training (Xie et al., arXiv:2006.14536)"
)

// Direction is what a guideline predicts for a variant relative to the spec
// it is compared with (the baseline in a one-factor sweep, the factor's
// reference level in a random one).
type Direction int

const (
	Unrelated    Direction = iota // the pair does not bear on the guideline
	ExpectUp                      // robust accuracy should rise
	ExpectDown                    // robust accuracy should fall
	ExpectNoGain                  // robust accuracy should not rise
)

func (d Direction) String() string {
	switch d {
	case ExpectUp:
		return "expected to help"
	case ExpectDown:
		return "expected to hurt"
	case ExpectNoGain:
		return "expected no gain"
	}
	return "unrelated"
}

// Guideline is one of the paper's guidelines as a prediction about pairs
// of specs: whichever factor produced a variant, the guideline looks at
// what changed between the two networks.
type Guideline struct {
	ID     string
	Number int    // its number in ../shared/PAPER-GUIDELINES.md's order, 1–18
	Claim  string // what the paper says
	Source string // where the claim comes from
	// Factors are the sweep factors that usually produce pairs this
	// guideline bears on (a hint for the "not tested" reason; any factor
	// may produce such a pair).
	Factors []string
	// Predict says what the guideline predicts for level relative to
	// base; both are complete specs (WithDefaults), as trained. It is nil
	// for the one guideline that is not about pairs: the width/depth
	// ratio band (RatioID), judged from the variants' ratios.
	Predict func(base, level arch.Spec) Direction
}

// RatioID is the guideline judged from width/depth ratios, not pairs.
const RatioID = "width-depth-ratio"

// All returns the paper's 18 guidelines, in the order of
// ../shared/PAPER-GUIDELINES.md.
func All() []Guideline {
	return []Guideline{
		{ID: "deeper-narrower", Number: 1, Source: srcModelMk + "; " + srcBMVC,
			Claim:   "At a fixed parameter budget, deeper and narrower networks are more robust than shallower, wider ones (RobArch-S: 27 blocks vs ResNet-50's 16, both 26M).",
			Factors: []string{sweep.FactorDepthWidth, sweep.FactorStageDepths}, Predict: predictDeeperNarrower},
		{ID: RatioID, Number: 2, Source: srcBMVC,
			Claim:   "Robust networks have a width-to-depth ratio of about 7.5 to 13.5 (mean of width ÷ depth over all stages but the last; measured on basic-block WideResNets on CIFAR-10).",
			Factors: []string{sweep.FactorDepthWidth, sweep.FactorStageDepths}},
		{ID: "stage-depths", Number: 3, Source: srcModelMk,
			Claim:   "Put most of the depth in stage 3 (the second-to-last stage) and a single block in the last stage (5,8,13,1).",
			Factors: []string{sweep.FactorStageDepths}, Predict: predictStageDepths},
		{ID: "two-groups", Number: 4, Source: srcModelMk,
			Claim:   "2 groups in the k×k convolution of each bottleneck block help robustness.",
			Factors: []string{sweep.FactorGroupWidth}, Predict: predictTwoGroups},
		{ID: "wide-stem", Number: 5, Source: srcModelMk,
			Claim:   "A wider stem (96 channels instead of ResNet-50's 64) helps robustness.",
			Factors: []string{sweep.FactorStemWidth}, Predict: predictWideStem},
		{ID: "postponed-downsampling", Number: 6, Source: srcModelMk,
			Claim:   "Postponing downsampling (no max-pool in the stem; stride 2 in the first stage instead) helps robustness.",
			Factors: []string{sweep.FactorDownsample}, Predict: predictPostponed},
		{ID: "conv-stem", Number: 7, Source: srcBMVC,
			Claim:   "A convolutional stem is more robust than a patchify stem.",
			Factors: []string{sweep.FactorStemType}, Predict: predictConvStem},
		{ID: "kernel-3x3", Number: 8, Source: srcYAML,
			Claim:   "3×3 kernels in the blocks; larger kernels do not improve robustness at a fixed budget (direction unsure).",
			Factors: []string{sweep.FactorKernel}, Predict: predictSmallKernel},
		{ID: "no-dilation", Number: 9, Source: srcYAML,
			Claim:   "Dilation stays 1; dilated k×k convolutions do not improve robustness (direction unsure).",
			Factors: []string{sweep.FactorDilation}, Predict: predictNoDilation},
		{ID: "smooth-activation", Number: 10, Source: srcModelMk + "; " + srcBMVC + "; " + srcSAT,
			Claim:   "Smooth activations (SiLU, GELU) are more robust than ReLU.",
			Factors: []string{sweep.FactorActivation}, Predict: predictSmoothActivation},
		{ID: "parametric-activation", Number: 11, Source: srcModelPy + "; " + srcBMVC,
			Claim:   "Parametric activations (PReLU, PSiLU, PSSiLU) are no better than their plain counterparts (ReLU, SiLU).",
			Factors: []string{sweep.FactorActivation}, Predict: predictParametric},
		{ID: "se-0.25", Number: 12, Source: srcModelMk + "; " + srcBMVC,
			Claim:   "Squeeze-and-excitation with ratio 0.25 helps robustness.",
			Factors: []string{sweep.FactorSERatio}, Predict: predictSE},
		{ID: "fewer-norms", Number: 13, Source: srcModelMk,
			Claim:   "Fewer normalization layers in each block help robustness (RobArch drops the norm after the first 1×1 convolution).",
			Factors: []string{sweep.FactorNorm}, Predict: predictFewerNorms},
		{ID: "norm-type", Number: 14, Source: srcModelPy,
			Claim:   "Batch norm is kept: instance, group or layer norm in its place do not improve robustness (direction unsure).",
			Factors: []string{sweep.FactorNorm}, Predict: predictNormType},
		{ID: "bottleneck-0.25", Number: 15, Source: srcYAML,
			Claim:   "The bottleneck multiplier stays 0.25: other multipliers do not improve robustness (direction unsure).",
			Factors: []string{sweep.FactorBottleneckMult}, Predict: predictBottleneck},
		{ID: "no-preact", Number: 16, Source: srcModelPy,
			Claim:   "Pre-activation blocks do not improve robustness (not adopted).",
			Factors: []string{sweep.FactorPreact}, Predict: predictNoPreact},
		{ID: "no-dense", Number: 17, Source: srcYAML,
			Claim:   "Dense connections within stages do not improve robustness (not adopted).",
			Factors: []string{sweep.FactorDenseRatio}, Predict: predictNoDense},
		{ID: "shortcut-norm-stem-kernel", Number: 18, Source: srcYAML,
			Claim:   "Batch norm on the projection shortcut and ResNet's stem kernel are kept: removing the shortcut norm or changing the stem kernel does not improve robustness.",
			Factors: []string{sweep.FactorNorm, sweep.FactorStemKernel}, Predict: predictShortcutStem},
	}
}

// ByPairs says whether the guideline is judged from pairs of specs (all
// but the width/depth ratio band, judged from the variants' ratios).
func (g Guideline) ByPairs() bool { return g.Predict != nil }

// Bearing lists the numbers of the guidelines a variant bears on: those
// whose prediction for level against base is not "Unrelated". Both specs
// are completed with defaults. `robarch sweep plan` shows it per variant,
// so a study's coverage of the paper is known before anything trains.
func Bearing(base, level arch.Spec) []int {
	base, level = base.WithDefaults(), level.WithDefaults()
	var out []int
	for _, g := range All() {
		if g.Predict != nil && g.Predict(base, level) != Unrelated {
			out = append(out, g.Number)
		}
	}
	return out
}

// AllBasic reports whether every stage of s has basic blocks: the ratio
// band was measured on such networks only.
func AllBasic(s arch.Spec) bool { return allBlocks(s, arch.Basic) }

// allBlocks reports whether s has stages and every one has blocks of kind.
func allBlocks(s arch.Spec, kind string) bool {
	for _, st := range s.Stages {
		if st.Block != kind {
			return false
		}
	}
	return len(s.Stages) > 0
}
