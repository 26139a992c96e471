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

// transplant copies the part of a spec one factor controls from the
// spec of a trial at the winning level (donor) into the recommendation
// (dst), so the recommendation needs no level parser of its own and
// follows whatever the sweep planner did. Each factor names the parts it
// owns; two factors that own the same part cannot both be applied.
type transplant struct {
	owns  []string
	apply func(dst *arch.Spec, donor arch.Spec, groups []int) error
}

var transplants = map[string]transplant{
	sweep.FactorDepthWidth:  {owns: []string{"depths"}, apply: copyDepths},
	sweep.FactorStageDepths: {owns: []string{"depths"}, apply: copyDepths},
	sweep.FactorKernel: {owns: []string{"kernel"}, apply: perStage(func(d *arch.Stage, s arch.Stage) {
		d.Kernel = s.Kernel
	})},
	sweep.FactorDilation: {owns: []string{"dilation"}, apply: perStage(func(d *arch.Stage, s arch.Stage) {
		d.Dilation = s.Dilation
	})},
	sweep.FactorStemKernel: {owns: []string{"stem.kernel"}, apply: func(dst *arch.Spec, d arch.Spec, _ []int) error {
		dst.Stem.Kernel = d.Stem.Kernel
		return nil
	}},
	// A whole alternative network replaces everything the others change.
	sweep.FactorSpec: {owns: allParts, apply: func(dst *arch.Spec, d arch.Spec, groups []int) error {
		in, classes := dst.Input, dst.Classes
		*dst = d.Clone()
		dst.Input, dst.Classes = in, classes
		if len(groups) != len(d.Stages) {
			return errStages
		}
		copy(groups, groupsOf(d))
		return nil
	}},
	sweep.FactorBottleneckMult: {owns: []string{"bottleneck"}, apply: perStage(func(d *arch.Stage, s arch.Stage) {
		d.BottleneckMultiplier = s.BottleneckMultiplier
	})},
	sweep.FactorGroupWidth: {owns: []string{"groups"}, apply: func(dst *arch.Spec, donor arch.Spec, groups []int) error {
		if len(donor.Stages) != len(dst.Stages) {
			return errStages
		}
		copy(groups, groupsOf(donor))
		return nil
	}},
	sweep.FactorActivation: {owns: []string{"activations"}, apply: func(dst *arch.Spec, d arch.Spec, _ []int) error {
		dst.Block.Activations = slices.Clone(d.Block.Activations)
		return nil
	}},
	sweep.FactorSERatio: {owns: []string{"se"}, apply: func(dst *arch.Spec, d arch.Spec, _ []int) error {
		dst.Block.SERatio, dst.Block.SEActivation = d.Block.SERatio, d.Block.SEActivation
		return nil
	}},
	sweep.FactorNorm: {owns: []string{"norms"}, apply: func(dst *arch.Spec, d arch.Spec, _ []int) error {
		dst.Block.Norms = slices.Clone(d.Block.Norms)
		dst.Block.ShortcutNorm, dst.Block.NormGroups = d.Block.ShortcutNorm, d.Block.NormGroups
		return nil
	}},
	sweep.FactorStemWidth: {owns: []string{"stem.width"}, apply: func(dst *arch.Spec, d arch.Spec, _ []int) error {
		dst.Stem.Width = d.Stem.Width
		return nil
	}},
	sweep.FactorStemType: {owns: []string{"stem.layout", "stem.kernel"}, apply: func(dst *arch.Spec, d arch.Spec, _ []int) error {
		w := dst.Stem.Width
		dst.Stem = d.Stem
		dst.Stem.Width = w
		return nil
	}},
	sweep.FactorDownsample: {owns: []string{"stem.layout", "strides"}, apply: func(dst *arch.Spec, d arch.Spec, _ []int) error {
		if len(d.Stages) != len(dst.Stages) {
			return errStages
		}
		dst.Stem.MaxPool = d.Stem.MaxPool
		for i := range dst.Stages {
			dst.Stages[i].Stride = d.Stages[i].Stride
		}
		return nil
	}},
	sweep.FactorDenseRatio: {owns: []string{"dense"}, apply: func(dst *arch.Spec, d arch.Spec, _ []int) error {
		dst.Block.DenseRatio = d.Block.DenseRatio
		return nil
	}},
	sweep.FactorPreact: {owns: []string{"order"}, apply: func(dst *arch.Spec, d arch.Spec, _ []int) error {
		dst.Block.Order = d.Block.Order
		return nil
	}},
}

// allParts are the parts of a network the factors own.
var allParts = []string{"depths", "kernel", "dilation", "bottleneck", "groups", "activations", "se", "norms",
	"stem.width", "stem.layout", "stem.kernel", "strides", "dense", "order"}

var errStages = errors.New("the winning variant has a different number of stages")

func copyDepths(dst *arch.Spec, donor arch.Spec, _ []int) error {
	if len(donor.Stages) != len(dst.Stages) {
		return errStages
	}
	dst.SetDepths(donor.Depths()...)
	return nil
}

func perStage(f func(d *arch.Stage, s arch.Stage)) func(*arch.Spec, arch.Spec, []int) error {
	return func(dst *arch.Spec, donor arch.Spec, _ []int) error {
		if len(donor.Stages) != len(dst.Stages) {
			return errStages
		}
		for i := range dst.Stages {
			f(&dst.Stages[i], donor.Stages[i])
		}
		return nil
	}
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
// budget. A factor whose change conflicts with one already applied, or
// that makes the spec invalid, is skipped with the reason. The result is
// a YAML spec ready for `robarch train`.
func Recommend(a *Analysis, baseline json.RawMessage, opts RecommendOptions) (*Recommendation, error) {
	if len(baseline) == 0 && a.Baseline != nil {
		baseline = a.Baseline.Spec
	}
	if len(baseline) == 0 {
		return nil, errors.New("recommend: the baseline trial has no spec; the store was not written by robarch sweep")
	}
	var base arch.Spec
	if err := json.Unmarshal(baseline, &base); err != nil {
		return nil, fmt.Errorf("recommend: decode baseline spec: %w", err)
	}
	base = base.WithDefaults()
	if err := arch.Check(base); err != nil {
		return nil, fmt.Errorf("recommend: baseline spec: %w", err)
	}
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
			return nil, fmt.Errorf("recommend: %w", err)
		}
		opts.Budget = n
	}

	rec := &Recommendation{Name: a.Sweep + "-recommended", Budget: opts.Budget}
	spec := base.Clone()
	groups := groupsOf(spec)
	owned := map[string]string{}
	for _, fs := range a.byBestEffect() {
		label := fs.Factor + "=" + fs.Best
		t, ok := transplants[fs.Factor]
		if !ok {
			rec.Skipped = append(rec.Skipped, label+": robarch does not know how to apply this factor")
			continue
		}
		if other := conflict(owned, t.owns); other != "" {
			rec.Skipped = append(rec.Skipped, fmt.Sprintf("%s: changes the same part of the network as %s, which gained more", label, other))
			continue
		}
		donor, err := a.donorSpec(fs.Factor, fs.Best)
		if err != nil {
			rec.Skipped = append(rec.Skipped, fmt.Sprintf("%s: %v", label, err))
			continue
		}
		cand, candGroups := spec.Clone(), slices.Clone(groups)
		if err := t.apply(&cand, donor, candGroups); err != nil {
			rec.Skipped = append(rec.Skipped, fmt.Sprintf("%s: %v", label, err))
			continue
		}
		if err := setGroups(&cand, candGroups, opts.Quantum); err != nil {
			rec.Skipped = append(rec.Skipped, fmt.Sprintf("%s: %v", label, err))
			continue
		}
		if err := arch.Check(cand); err != nil {
			rec.Skipped = append(rec.Skipped, fmt.Sprintf("%s: %v", label, err))
			continue
		}
		spec, groups = cand, candGroups
		for _, o := range t.owns {
			owned[o] = label
		}
		r, _ := a.effectOf(fs.Factor, fs.Best)
		rec.Applied = append(rec.Applied, fmt.Sprintf("%s (%s %s)", label, shortMetric(a.RobustMetric), formatEffect(r)))
	}

	fitted, n, err := arch.Fit(spec, opts.Budget, arch.FitOptions{Tolerance: opts.Tolerance, Quantum: opts.Quantum, ScaleDepth: opts.ScaleDepth})
	var inf *arch.InfeasibleError
	switch {
	case errors.As(err, &inf):
		fitted, n = inf.NearestSpec, inf.Nearest
		rec.Note = fmt.Sprintf("the budget cannot be met within ±%g%%; this is the nearest reachable spec (%+.2f%%)",
			100*opts.Tolerance, 100*float64(n-opts.Budget)/float64(opts.Budget))
	case err != nil:
		return nil, fmt.Errorf("recommend: fit to %s: %w", arch.FormatBudget(opts.Budget), err)
	}
	fitted.Name = rec.Name
	if len(rec.Applied) == 0 {
		fitted.Description = fmt.Sprintf("robarch guidelines for sweep %s: no factor helped robust accuracy, so this is the baseline", a.Sweep)
	} else {
		fitted.Description = fmt.Sprintf("robarch guidelines for sweep %s: baseline with %s, refitted to %s parameters",
			a.Sweep, strings.Join(bestLabels(rec.Applied), ", "), arch.FormatBudget(opts.Budget))
	}
	if err := arch.Check(fitted); err != nil {
		return nil, fmt.Errorf("recommend: fitted spec: %w", err)
	}
	if rec.MACs, err = arch.MACs(fitted, fitted.Input.Height, fitted.Input.Width); err != nil {
		return nil, fmt.Errorf("recommend: %w", err)
	}
	rec.Params, rec.WidthDepthRatio = n, arch.WidthDepthRatio(fitted)
	y, err := arch.EncodeYAML(fitted)
	if err != nil {
		return nil, fmt.Errorf("recommend: %w", err)
	}
	rec.YAML = string(y)
	return rec, nil
}

func bestLabels(applied []string) []string {
	out := make([]string, len(applied))
	for i, s := range applied {
		out[i], _, _ = strings.Cut(s, " (")
	}
	return out
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
