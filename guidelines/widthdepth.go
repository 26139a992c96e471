package guidelines

import (
	"math"
	"slices"

	"github.com/robarch/robarch/guidelines/paper"
	"github.com/robarch/robarch/study"
)

// widthDepth fits robust accuracy across variants.
func (a *Analysis) widthDepth() {
	wd := WidthDepth{Band: paper.RatioBand}
	var ratio, lp, lm, yr, yp, ym []float64
	for _, g := range a.Groups {
		y := g.Mean[a.RobustMetric]
		if g.WidthDepthRatio > 0 {
			ratio, yr = append(ratio, g.WidthDepthRatio), append(yr, y)
			if g.WidthDepthRatio >= wd.Band[0] && g.WidthDepthRatio <= wd.Band[1] {
				wd.InBand = append(wd.InBand, g.Variant)
			} else {
				wd.OutOfBand = append(wd.OutOfBand, g.Variant)
			}
		}
		if g.Params > 0 {
			lp, yp = append(lp, math.Log10(float64(g.Params))), append(yp, y)
		}
		if g.MACs > 0 {
			lm, ym = append(lm, math.Log10(float64(g.MACs))), append(ym, y)
		}
	}
	wd.ParamsSpread, wd.MACsSpread = spread(lp), spread(lm)
	if f, ok := study.FitLine(ratio, yr); ok {
		wd.Ratio = &f
	}
	if f, ok := study.FitLine(lp, yp); ok {
		wd.LogParams = &f
	}
	if f, ok := study.FitLine(lm, ym); ok {
		wd.LogMACs = &f
	}
	a.WidthDepth = wd
}

// spread is max/min − 1 of values given as log10.
func spread(logs []float64) float64 {
	if len(logs) == 0 {
		return 0
	}
	return math.Pow(10, slices.Max(logs)-slices.Min(logs)) - 1
}

// edfs builds, per factor, the EDF of robust error (1 − robust accuracy)
// over the trials of each level, the baseline's as a reference.
func (a *Analysis) edfs() {
	robustErr := func(gs ...*Group) []float64 {
		var out []float64
		for _, g := range gs {
			for _, v := range g.Values[a.RobustMetric] {
				out = append(out, 1-v)
			}
		}
		return out
	}
	base := study.NewEDF("baseline", robustErr(a.Baseline))
	for _, fs := range a.Factors {
		set := FactorEDFs{Factor: fs.Factor}
		if a.Design == "ofat" {
			set.Curves = append(set.Curves, base)
		}
		levels := fs.Levels
		if a.Design == RandomFactor {
			levels = nil
			for _, g := range a.Groups {
				if l, ok := g.Levels[fs.Factor]; ok && !slices.Contains(levels, l) {
					levels = append(levels, l)
				}
			}
			slices.Sort(levels)
		}
		for _, level := range levels {
			var gs []*Group
			for _, g := range a.Groups {
				if (g.Factor == fs.Factor && g.Level == level) || g.Levels[fs.Factor] == level {
					gs = append(gs, g)
				}
			}
			set.Curves = append(set.Curves, study.NewEDF(fs.Factor+"="+level, robustErr(gs...)))
		}
		a.EDFs = append(a.EDFs, set)
	}
}
