// Package planreport writes a sweep's plan for people: its variants with
// their exact parameters and MACs, the paper's guidelines each bears on,
// and the trials it will run.
package planreport

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/guidelines/paper"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

// WriteJSON writes a plan's variants as an indented JSON array (robarch
// sweep plan --json).
func WriteJSON(w io.Writer, p *sweep.Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p.Variants)
}

// Write writes a plan as robarch sweep plan's table: the sweep's budget
// and seeds, one row per variant (params, MACs, deviation from the
// budget, width/depth, feasible, the guidelines it bears on), which of
// the paper's guidelines no level of a one-factor design bears on, the
// infeasible variants with their reasons, and the number of trials.
func Write(w io.Writer, f *sweep.File, p *sweep.Plan) error {
	fmt.Fprintf(w, "sweep %s: budget %s (%d), ±%g%%, input %dx%dx%d, seeds %s\n", f.Name,
		arch.FormatBudget(p.Budget), p.Budget, 100*f.Tolerance, p.Input[0], p.Input[1], p.Input[2], f.Seeds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "VARIANT\tPARAMS\tMACS\tDEVIATION\tW/D\tFEASIBLE\tGUIDELINES\t")
	for _, v := range p.Variants {
		feasible := "yes"
		if !v.Feasible {
			feasible = "no"
		}
		_, bears := GuidelinesOf(p.Variants[0], v)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%+.2f%%\t%.1f\t%s\t%s\t\n", v.Name, v.Params, arch.FormatBudget(v.MACs), 100*v.Deviation, v.WidthDepthRatio, feasible, bears)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if f.Design == sweep.OneFactor {
		if missing := Uncovered(p.Variants); len(missing) == 0 {
			fmt.Fprintln(w, "GUIDELINES: the RobArch paper's guidelines each level bears on (docs/findings.md); every one judged from pairs of networks has a level")
		} else {
			fmt.Fprintf(w, "GUIDELINES: the RobArch paper's guidelines each level bears on (docs/findings.md); no level bears on %s\n", strings.Join(missing, ", "))
		}
	}
	for _, v := range p.Variants {
		if !v.Feasible {
			fmt.Fprintf(w, "not feasible: %s: %s\n", v.Name, v.Reason)
		}
	}
	first := f.Seeds.Looks()[0]
	if f.Seeds.Adaptive() {
		fmt.Fprintf(w, "%d of %d variants feasible, %d trials in the first round, at most %d\n", len(p.Feasible()), len(p.Variants),
			len(p.Feasible())*first, MaxTrials(len(p.Feasible()), f.Seeds))
		return nil
	}
	fmt.Fprintf(w, "%d of %d variants feasible, %d trials\n", len(p.Feasible()), len(p.Variants), len(p.Feasible())*first)
	return nil
}

// Uncovered is the paper's guidelines judged from pairs of networks that
// no variant of a one-factor plan bears on, as "number id".
func Uncovered(variants []sweep.Variant) []string {
	covered := map[int]bool{}
	for _, v := range variants {
		ns, _ := GuidelinesOf(variants[0], v) // the first is the baseline
		for _, n := range ns {
			covered[n] = true
		}
	}
	var missing []string
	for _, g := range paper.All() {
		if !covered[g.Number] && g.ByPairs() {
			missing = append(missing, fmt.Sprintf("%d %s", g.Number, g.ID))
		}
	}
	return missing
}

// GuidelinesOf is the numbers of the paper's guidelines a planned
// one-factor variant bears on against the baseline, and them as text.
func GuidelinesOf(base, v sweep.Variant) ([]int, string) {
	switch {
	case v.Factor == results.BaselineFactor, !v.Feasible, v.Factor == string(sweep.Random):
		return nil, "—"
	case v.Factor == sweep.FactorSpec:
		return nil, "combined"
	}
	ns := paper.Bearing(base.Spec, v.Spec)
	if len(ns) == 0 {
		return nil, "none"
	}
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return ns, strings.Join(parts, ",")
}

// MaxTrials is the most trials an adaptive policy can run.
func MaxTrials(variants int, s study.Seeds) int {
	n := variants * s.Max
	if s.MaxTrials > 0 {
		n = min(n, s.MaxTrials)
	}
	return n
}
