package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/robarch/robarch/guidelines"
	"github.com/robarch/robarch/sweep/store"
)

func newGuidelinesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "guidelines", Short: "Turn sweep results into ranked, quantified design guidelines"}
	report := &cobra.Command{
		Use:   "report",
		Short: "Write the guidelines report (HTML, Markdown, JSON, plots) for a sweep in a store",
		Long: `report analyses a sweep's finished trials: the effect of every factor level on
clean, PGD and AutoAttack accuracy against the baseline with bootstrap intervals
over seeds, a verdict per level, the width/depth analysis, EDFs of robust error,
the comparison with the RobArch paper's findings, and a recommended spec. It
works on a partly finished sweep and says how many trials are missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			var opts guidelines.Options
			opts.Sweep, _ = cmd.Flags().GetString("sweep")
			opts.RobustMetric, _ = cmd.Flags().GetString("metric")
			opts.Resamples, _ = cmd.Flags().GetInt("resamples")
			trials, err := s.List(cmd.Context(), store.Filter{Sweep: opts.Sweep})
			if err != nil {
				return err
			}
			out, _ := cmd.Flags().GetString("out")
			a, err := guidelines.Report(cmd.Context(), trials, out, opts, guidelines.RecommendOptions{})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "sweep %s: %d of %d trials done, verdicts on %s\n", a.Sweep, a.Counts.Done, a.Counts.Total, guidelines.MetricName(a.RobustMetric))
			for _, e := range a.Effects {
				if est, ok := e.Estimate(a.RobustMetric); ok {
					fmt.Fprintf(w, "  %2d. %-36s %+6.2f pts  %s\n", e.Rank, e.Label(), guidelines.Points(est.Effect), e.Verdict)
				}
			}
			fmt.Fprintf(w, "report: %s\n", filepath.Join(out, guidelines.HTMLFile))
			return nil
		},
	}
	report.Flags().String("store", "results.db", "results store: a SQLite file or postgres://...")
	report.Flags().String("out", "report", "output folder")
	report.Flags().String("sweep", "", "sweep to report on (needed when the store holds several)")
	report.Flags().String("metric", "", "robust metric for verdicts: pgd_acc or aa_acc (default: aa_acc when every trial has it)")
	report.Flags().Int("resamples", 2000, "bootstrap resamples per interval")
	cmd.AddCommand(report)
	return cmd
}
