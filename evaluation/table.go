package evaluation

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/robarch/robarch/internal/amp"
)

// fromWord is where a setting came from, in words.
func fromWord(from string) string {
	switch from {
	case FromFlag:
		return "command line"
	case FromCheckpoint:
		return "checkpoint"
	}
	return "defaults"
}

// WriteTable writes r as robarch eval's table: what was evaluated and
// where its settings came from, notes on an off radius or low precision,
// one row per attack (AutoAttack's stages below it) and the worst case,
// then the warnings.
func WriteTable(w io.Writer, r Result) error {
	fmt.Fprintf(w, "%s (%d parameters) on %s: %d examples, %s eps %.4g, seed %d, %s forward passes\n", r.Model, r.Params, r.Dataset, r.N, r.Norm, r.Eps, r.Seed, r.Precision)
	fmt.Fprintf(w, "eps from the %s, norm from the %s, dataset from the %s\n", fromWord(r.From["eps"]), fromWord(r.From["norm"]), fromWord(r.From["dataset"]))
	if r.OffRadius() {
		fmt.Fprintf(w, "note: eps %.4g is not the radius the checkpoint was trained and reported at (%.4g)\n", r.Eps, r.TrainedEps)
	}
	if r.Precision != string(amp.FP32) {
		fmt.Fprintf(w, "note: evaluated in %s, not fp32: low-precision attacks can overstate robustness\n", r.Precision)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "attack\taccuracy\tcorrect\tseconds")
	row := func(name string, acc float64, secs string) {
		fmt.Fprintf(tw, "%s\t%.4f\t%d/%d\t%s\n", name, acc, int(acc*float64(r.N)+0.5), r.N, secs)
	}
	row("clean", r.CleanAcc, "")
	for _, name := range r.Attacks {
		row(name, r.PerAttack[name], fmt.Sprintf("%.1f", r.Seconds[name]))
		for _, st := range r.Stages[name] {
			row("  after "+st.Attack, st.RobustAcc, "")
		}
	}
	row("worst case", r.RobustAcc, "")
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(w, "\nwarning: %s\n", warning)
	}
	return nil
}
