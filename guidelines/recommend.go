package guidelines

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/sweep"
)

// RecommendOptions tune Recommend; zero fields are read from the
// baseline trial's stored sweep config, then fall back to arch's defaults.
type RecommendOptions struct {
	Budget     int64   // parameters; default the baseline's count
	Tolerance  float64 // relative; default the sweep's, else arch.DefaultTolerance
	Quantum    int     // width multiple; default the sweep's, else 8
	ScaleDepth bool    // let the fit change depths too (the sweep's setting is ORed in)
}

// Recommendation is the architecture the sweep's guidelines point to.
type Recommendation struct {
	Name            string   `json:"name"`
	YAML            string   `json:"spec_yaml"`
	Applied         []string `json:"applied"`
	Skipped         []string `json:"skipped,omitempty"`
	Budget          int64    `json:"budget"`
	Params          int64    `json:"params"`
	MACs            int64    `json:"macs"`
	WidthDepthRatio float64  `json:"width_depth_ratio"`
	Note            string   `json:"note,omitempty"`
}

// sweepFitSettings reads the fit settings a sweep stored with its trials
// (zero values when the config is not a sweep's: the fit's defaults apply).
func sweepFitSettings(config json.RawMessage) (tol float64, quantum int, scaleDepth bool) {
	c, err := sweep.ParseTrialConfig(config)
	if err != nil {
		return 0, 0, false
	}
	return c.Sweep.Tolerance, c.Sweep.Quantum, c.Sweep.ScaleDepth
}

// Recommend applies, to the baseline spec (JSON; nil means the
// baseline trial's own), the best level of every factor whose verdict is
// "helps", largest robust gain first, then refits the widths to the
// budget. Each level is applied by copying the part of the network its
// factor controls from a trial at that level (sweep.Transplant). A factor
// whose change conflicts with one already applied, that makes the spec
// invalid, or that package sweep does not define, is skipped with the
// reason. The result is a YAML spec ready for `robarch train`.
func Recommend(a *Analysis, baseline json.RawMessage, opts RecommendOptions) (*Recommendation, error) {
	base, err := a.recommendBase(baseline)
	if err != nil {
		return nil, err
	}
	if opts, err = a.recommendOptions(base, opts); err != nil {
		return nil, err
	}
	rec := &Recommendation{Name: a.Sweep + "-recommended", Budget: opts.Budget}
	spec, labels := a.applyHelping(rec, base, opts.Quantum)
	if err := a.fitRecommendation(rec, spec, labels, opts); err != nil {
		return nil, err
	}
	return rec, nil
}

// recommendBase decodes and checks the spec a recommendation starts from.
func (a *Analysis) recommendBase(baseline json.RawMessage) (arch.Spec, error) {
	if len(baseline) == 0 && a.Baseline != nil {
		baseline = a.Baseline.Spec
	}
	if len(baseline) == 0 {
		return arch.Spec{}, errors.New("recommend: the baseline trial has no spec; the store was not written by robarch sweep")
	}
	var base arch.Spec
	if err := json.Unmarshal(baseline, &base); err != nil {
		return arch.Spec{}, fmt.Errorf("recommend: decode baseline spec: %w", err)
	}
	base = base.WithDefaults()
	if err := arch.Check(base); err != nil {
		return arch.Spec{}, fmt.Errorf("recommend: baseline spec: %w", err)
	}
	return base, nil
}

// recommendOptions fills the zero options from the sweep's stored fit
// settings, arch's defaults and the baseline's parameter count.
func (a *Analysis) recommendOptions(base arch.Spec, opts RecommendOptions) (RecommendOptions, error) {
	tol, quantum, scaleDepth := sweepFitSettings(a.Baseline.Config)
	opts.ScaleDepth = opts.ScaleDepth || scaleDepth
	if opts.Tolerance == 0 {
		opts.Tolerance = cmp.Or(tol, arch.DefaultTolerance)
	}
	if opts.Quantum == 0 {
		opts.Quantum = cmp.Or(quantum, arch.DefaultQuantum)
	}
	if opts.Budget == 0 {
		opts.Budget = a.Budget
	}
	if opts.Budget == 0 {
		n, err := arch.Params(base)
		if err != nil {
			return opts, fmt.Errorf("recommend: %w", err)
		}
		opts.Budget = n
	}
	return opts, nil
}

// applyHelping transplants the best level of every factor that helps
// into base, largest gain first, noting each in rec.Applied or, with the
// reason, rec.Skipped; it returns the spec and the applied levels'
// "factor=level" labels.
func (a *Analysis) applyHelping(rec *Recommendation, base arch.Spec, quantum int) (arch.Spec, []string) {
	spec := base.Clone()
	groups := sweep.GroupsOf(spec)
	owned := map[string]string{}
	var labels []string
	for _, fs := range a.byBestEffect() {
		label := fs.Factor + "=" + fs.Best
		skip := func(why any) { rec.Skipped = append(rec.Skipped, fmt.Sprintf("%s: %v", label, why)) }
		parts, err := sweep.Parts(fs.Factor)
		if err != nil {
			skip("robarch does not know how to apply this factor")
			continue
		}
		if other := conflict(owned, parts); other != "" {
			skip(fmt.Sprintf("changes the same part of the network as %s, which gained more", other))
			continue
		}
		donor, err := a.donorSpec(fs.Factor, fs.Best)
		if err != nil {
			skip(err)
			continue
		}
		cand, candGroups := spec.Clone(), slices.Clone(groups)
		if err := sweep.Transplant(fs.Factor, &cand, candGroups, donor); err != nil {
			skip(err)
			continue
		}
		if err := setGroups(&cand, candGroups, quantum); err != nil {
			skip(err)
			continue
		}
		if err := arch.Check(cand); err != nil {
			skip(err)
			continue
		}
		spec, groups = cand, candGroups
		for _, o := range parts {
			owned[o] = label
		}
		r, _ := a.effectOf(fs.Factor, fs.Best)
		rec.Applied = append(rec.Applied, fmt.Sprintf("%s (%s %s)", label, shortMetric(a.RobustMetric), formatEffect(r)))
		labels = append(labels, label)
	}
	return spec, labels
}

// fitRecommendation refits spec to the budget (the nearest reachable spec
// when the budget cannot be met, with a note) and fills in rec.
func (a *Analysis) fitRecommendation(rec *Recommendation, spec arch.Spec, labels []string, opts RecommendOptions) error {
	fitted, n, err := arch.Fit(spec, opts.Budget, arch.FitOptions{Tolerance: opts.Tolerance, Quantum: opts.Quantum, ScaleDepth: opts.ScaleDepth})
	var inf *arch.InfeasibleError
	switch {
	case errors.As(err, &inf):
		fitted, n = inf.NearestSpec, inf.Nearest
		rec.Note = fmt.Sprintf("the budget cannot be met within ±%g%%; this is the nearest reachable spec (%+.2f%%)",
			100*opts.Tolerance, 100*float64(n-opts.Budget)/float64(opts.Budget))
	case err != nil:
		return fmt.Errorf("recommend: fit to %s: %w", arch.FormatBudget(opts.Budget), err)
	}
	fitted.Name = rec.Name
	if len(labels) == 0 {
		fitted.Description = fmt.Sprintf("robarch guidelines for sweep %s: no factor helped robust accuracy, so this is the baseline", a.Sweep)
	} else {
		fitted.Description = fmt.Sprintf("robarch guidelines for sweep %s: baseline with %s, refitted to %s parameters",
			a.Sweep, strings.Join(labels, ", "), arch.FormatBudget(opts.Budget))
	}
	if err := arch.Check(fitted); err != nil {
		return fmt.Errorf("recommend: fitted spec: %w", err)
	}
	if rec.MACs, err = arch.MACs(fitted, fitted.Input.Height, fitted.Input.Width); err != nil {
		return fmt.Errorf("recommend: %w", err)
	}
	rec.Params, rec.WidthDepthRatio = n, arch.WidthDepthRatio(fitted)
	y, err := arch.EncodeYAML(fitted)
	if err != nil {
		return fmt.Errorf("recommend: %w", err)
	}
	rec.YAML = string(y)
	return nil
}

func conflict(owned map[string]string, parts []string) string {
	for _, p := range parts {
		if by, ok := owned[p]; ok {
			return by
		}
	}
	return ""
}

// byBestEffect lists the factors that help, largest robust gain first.
func (a *Analysis) byBestEffect() []FactorSummary {
	var out []FactorSummary
	for _, fs := range a.Factors {
		if fs.Best != "" {
			out = append(out, fs)
		}
	}
	slices.SortStableFunc(out, func(x, y FactorSummary) int { return cmp.Compare(y.BestEffect, x.BestEffect) })
	return out
}

func (a *Analysis) effectOf(factor, level string) (Estimate, bool) {
	for _, e := range a.Effects {
		if e.Factor == factor && e.Level == level {
			return e.Estimate(a.RobustMetric)
		}
	}
	return Estimate{}, false
}

// donorSpec is the spec of a trial at factor=level.
func (a *Analysis) donorSpec(factor, level string) (arch.Spec, error) {
	for _, g := range a.Groups {
		if (g.Factor == factor && g.Level == level) || g.Levels[factor] == level {
			if len(g.Spec) == 0 {
				continue
			}
			var s arch.Spec
			if err := json.Unmarshal(g.Spec, &s); err != nil {
				return arch.Spec{}, fmt.Errorf("decode the spec of %s: %w", g.Variant, err)
			}
			return s.WithDefaults(), nil
		}
	}
	return arch.Spec{}, errors.New("no trial at this level has a stored spec")
}

// setGroups sets each stage's group width for the wanted number of groups
// of its bottleneck, moving the stage width to the nearest multiple of the
// quantum that divides evenly when needed (the fit rescales widths anyway).
func setGroups(s *arch.Spec, groups []int, quantum int) error {
	for i := range s.Stages {
		st := &s.Stages[i]
		g := groups[i]
		if st.Block != arch.Bottleneck || g <= 1 {
			st.GroupWidth = 0
			continue
		}
		divides := func(w int) bool {
			bw := arch.BottleneckWidth(w, st.BottleneckMultiplier)
			return bw >= g && bw%g == 0
		}
		if !divides(st.Width) {
			w := 0
			for d := 0; d < 1<<12 && w == 0; d++ {
				for _, c := range []int{(st.Width/quantum + d) * quantum, (st.Width/quantum - d) * quantum} {
					if c >= quantum && divides(c) {
						w = c
						break
					}
				}
			}
			if w == 0 {
				return fmt.Errorf("stages[%d]: no width near %d splits its bottleneck into %d groups", i, st.Width, g)
			}
			st.Width = w
		}
		st.GroupWidth = arch.BottleneckWidth(st.Width, st.BottleneckMultiplier) / g
	}
	return nil
}
