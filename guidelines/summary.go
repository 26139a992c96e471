package guidelines

import (
	"fmt"
	"io"
)

// The analysis in a few lines of text, for a terminal (robarch guidelines
// report and compare print these; the report's files are report.go's).

// WriteVerdicts writes a's headline (trials done, the robust metric) and
// one line per ranked level with an estimate on it: effect in points, its
// interval, its number of pairs and its verdict; then the pending round
// of an adaptive sweep.
func WriteVerdicts(w io.Writer, a *Analysis) {
	fmt.Fprintf(w, "sweep %s: %d of %d trials done, verdicts on %s\n", a.Sweep, a.Counts.Done, a.Counts.Total, MetricName(a.RobustMetric))
	for _, e := range a.Effects {
		est, ok := e.Estimate(a.RobustMetric)
		if !ok {
			continue
		}
		ci := "no interval"
		if est.CI != nil {
			ci = fmt.Sprintf("[%+.2f, %+.2f]", Points(est.CI.Low), Points(est.CI.High))
		}
		fmt.Fprintf(w, "  %2d. %-36s %+6.2f pts %-18s n=%d  %s\n", e.Rank, e.Label(), Points(est.Effect), ci, est.N, e.Verdict)
	}
	if m := a.Model; m != nil && m.Pending != nil {
		fmt.Fprintf(w, "  pending: round %d, seeds %v for %v\n", m.Pending.Look, m.Pending.Seeds, m.Pending.Variants)
	}
}

// WriteReplication writes r's tally of agreements, one line per level
// with each side's verdict and effect ("—" where a side lacks the level),
// and r's notes.
func WriteReplication(w io.Writer, r *Replication) {
	fmt.Fprintf(w, "replication, %s vs %s: %d agree, %d consistent, %d sign differs, %d contradict\n",
		r.NameA, r.NameB, r.Agree, r.Consistent, r.SignDiffers, r.Contradict)
	side := func(v *HalfValue) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%s %+.2f", v.Verdict, Points(v.Effect))
	}
	for _, l := range r.Levels {
		fmt.Fprintf(w, "  %-36s %-24s %-24s %s\n", l.Label, side(l.A), side(l.B), l.Agreement)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}
