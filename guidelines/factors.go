// Package guidelines turns a sweep's finished trials into design
// guidelines: the effect of every factor level on clean and robust
// accuracy with bootstrap intervals, a verdict per level, the width/depth
// analysis, design-space EDFs, the RobArch paper's guidelines (package
// guidelines/paper predicts, findings.go judges) and a recommended
// architecture, written as an offline HTML page, a Markdown report, a
// JSON file and PNG/SVG plots.
//
// It works on []results.Trial; the factor names and level syntax are
// package sweep's (its vocabulary is pure Go, so reading it needs no
// libtorch): a random sample's level is read by sweep.ParseSample, and a
// factor's level is applied to a spec by sweep.Transplant, so this
// package parses no level strings. The statistics are package study's.
//
// Analysis and rendering are apart: Analyze, Recommend and Compare build
// an Analysis; figures.go decides what each plot shows (package figure
// draws it), view.go is the templates' view and report.go writes the
// files. No other file imports a rendering package (split_test.go).
package guidelines

import (
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

// RandomFactor is the Factor of trials of a random-sampled sweep; their
// Level lists every factor's level as "name=level;name=level".
const RandomFactor = "random"

// reportOrder is the order the report presents sweep's factors in: the
// network's shape first, then its blocks' components.
var reportOrder = []string{
	sweep.FactorDepthWidth, sweep.FactorStageDepths, sweep.FactorGroupWidth, sweep.FactorBottleneckMult,
	sweep.FactorStemWidth, sweep.FactorStemType, sweep.FactorStemKernel, sweep.FactorDownsample, sweep.FactorKernel,
	sweep.FactorDilation, sweep.FactorActivation, sweep.FactorSERatio, sweep.FactorNorm, sweep.FactorPreact,
	sweep.FactorDenseRatio, sweep.FactorSpec,
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
