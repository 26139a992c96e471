// Package guidelines turns a sweep's finished trials into design
// guidelines: the effect of every factor level on clean and robust
// accuracy with bootstrap intervals, a verdict per level, the width/depth
// analysis, design-space EDFs, a comparison with the RobArch paper's
// findings and a recommended architecture, written as an offline HTML
// page, a Markdown report, a JSON file and PNG/SVG plots.
//
// It works on []results.Trial and never imports the sweep package: the
// factor names below are the contract with the sweep planner.
package guidelines

import "github.com/robarch/robarch/study"

// Factor names a sweep varies. The sweep planner uses the same strings;
// the paper's findings are mapped to them, so renaming one is a breaking
// change on both sides.
const (
	FactorDepthWidth     = "depth_width"     // "deeper-narrower", "shallower-wider", "x1.5"
	FactorStageDepths    = "stage_depths"    // "3,4,12,1"
	FactorKernel         = "kernel"          // "3", "5", "7"
	FactorActivation     = "activation"      // "silu" or "relu,silu,silu"
	FactorSERatio        = "se_ratio"        // "0", "0.25"
	FactorNorm           = "norm"            // "batchnorm", "identity,batchnorm,batchnorm", "shortcut:identity"
	FactorStemWidth      = "stem_width"      // "96"
	FactorStemType       = "stem_type"       // "conv", "patchify", "patchify:4"
	FactorDownsample     = "downsample"      // "postponed" or per-stage strides "1,2,2,2"
	FactorBottleneckMult = "bottleneck_mult" // "0.25", "4"
	FactorGroupWidth     = "group_width"     // "groups:2" or a group width "64"
	FactorDenseRatio     = "dense_ratio"     // "0", "1"
	FactorPreact         = "preact"          // "true", "false"
)

// RandomFactor is the Factor of trials of a random-sampled sweep; their
// Level lists every factor's level as "name=level;name=level".
const RandomFactor = "random"

// Factors lists every factor name the package knows, in the order the
// report presents them.
var Factors = []string{
	FactorDepthWidth, FactorStageDepths, FactorGroupWidth, FactorBottleneckMult,
	FactorStemWidth, FactorStemType, FactorDownsample, FactorKernel,
	FactorActivation, FactorSERatio, FactorNorm, FactorPreact, FactorDenseRatio,
}

// Verdicts of a level's effect on robust accuracy (package study owns
// them: the seed rounds of a sweep decide on the same words).
const (
	Helps         = study.Helps
	Hurts         = study.Hurts
	NoClearEffect = study.NotClear
	// Inconclusive: no interval can be formed (no residual degrees of
	// freedom, e.g. a single seed everywhere).
	Inconclusive = study.NoInterval
)

// Outcomes of a paper finding in this sweep.
const (
	Agrees        = "agrees"
	Disagrees     = "disagrees"
	NotConclusive = "inconclusive"
	NotTested     = "not tested by this sweep"
)
