package guidelines

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

// group collects trials by variant in the order the store lists them
// (plan order), baseline first.
func (a *Analysis) group(trials []results.Trial) error {
	byVariant := map[string]*Group{}
	var order []*Group
	for _, t := range trials {
		g := byVariant[t.Variant]
		if g == nil {
			g = &Group{Variant: t.Variant, Factor: t.Factor, Level: t.Level, Params: t.Params, MACs: t.MACs,
				WidthDepthRatio: t.WidthDepthRatio, Values: map[string][]float64{}, Mean: map[string]float64{}}
			if t.Factor == RandomFactor {
				lv, err := sweep.ParseSample(t.Level)
				if err != nil {
					return fmt.Errorf("trial %s: %w", t.Key(), err)
				}
				g.Levels = lv
			}
			byVariant[t.Variant] = g
			order = append(order, g)
		} else if g.Factor != t.Factor || g.Level != t.Level {
			return fmt.Errorf("variant %s appears as %s=%s and %s=%s; the store is inconsistent", t.Variant, g.Factor, g.Level, t.Factor, t.Level)
		}
		g.Planned++
		if len(g.Spec) == 0 && len(t.Spec) > 0 {
			g.Spec, g.Config = t.Spec, t.Config
		}
	}
	// Seeds in ascending order so Values line up across metrics and runs.
	done := slices.Clone(trials)
	slices.SortStableFunc(done, func(x, y results.Trial) int { return cmp.Compare(x.Seed, y.Seed) })
	for _, t := range done {
		if t.Status != results.StatusDone {
			continue
		}
		g := byVariant[t.Variant]
		g.Seeds = append(g.Seeds, t.Seed)
		for _, m := range a.Metrics {
			g.Values[m] = append(g.Values[m], t.Metrics[m])
		}
	}
	for _, g := range order {
		if g.N() < g.Planned {
			a.Incomplete = append(a.Incomplete, fmt.Sprintf("%s: %d/%d done", g.Variant, g.N(), g.Planned))
		}
		if g.N() == 0 {
			continue
		}
		for _, m := range a.Metrics {
			g.Mean[m] = study.Mean(g.Values[m])
		}
		if g.Factor == results.BaselineFactor {
			a.Baseline = g
		}
		a.Groups = append(a.Groups, g)
	}
	slices.SortStableFunc(a.Groups, func(x, y *Group) int {
		return cmp.Compare(boolRank(x.Factor != results.BaselineFactor), boolRank(y.Factor != results.BaselineFactor))
	})
	a.Budget = a.Baseline.Params
	return nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
