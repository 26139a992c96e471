package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/robarch/robarch/guidelines"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep/store"
)

func newGuidelinesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "guidelines", Short: "Turn sweep results into ranked, quantified design guidelines"}
	report := &cobra.Command{
		Use:   "report",
		Short: "Write the guidelines report (HTML, Markdown, JSON, plots) for a sweep in a store",
		Long: `report analyses a sweep's finished trials: the effect of every factor level on
clean, PGD and AutoAttack accuracy against the baseline, paired by seed in an
additive model (metric = variant + seed) with the seed-to-seed variance pooled
over all variants, Student-t intervals, Holm-adjusted verdicts, the smallest
effect the sweep could detect and the seeds a 1-point effect needs, the
AutoAttack check, the width/depth analysis, EDFs of robust error, the
comparison with the RobArch paper's findings, and a recommended spec. It works
on a partly finished or adaptive sweep and says which trials and rounds are
still pending.

  robarch guidelines report --store out/results.db --out out/report
  robarch guidelines report --store out/results.db --out out/report --split-seeds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := reportOptions(cmd)
			opts.SplitSeeds, _ = cmd.Flags().GetBool("split-seeds")
			trials, err := readTrials(cmd, "", opts.Sweep)
			if err != nil {
				return err
			}
			out, _ := cmd.Flags().GetString("out")
			a, err := guidelines.Report(cmd.Context(), trials, out, opts, guidelines.RecommendOptions{})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			guidelines.WriteVerdicts(w, a)
			if r := a.Replication; r != nil {
				guidelines.WriteReplication(w, r)
			}
			fmt.Fprintf(w, "report: %s\n", filepath.Join(out, guidelines.HTMLFile))
			return nil
		},
	}
	report.Flags().String("store", "results.db", "results store: a SQLite file or postgres://...")
	report.Flags().String("out", "report", "output folder")
	report.Flags().Bool("split-seeds", false, "also analyse two disjoint halves of the seeds (alternating in seed order) and report per level whether they agree")
	addAnalysisFlags(report)

	compare := &cobra.Command{
		Use:   "compare A.db B.db",
		Short: "Put two stores' verdicts side by side, level by level (e.g. a study and its replication with other seeds)",
		Long: `compare analyses the same sweep in two stores and prints, for every level, each
store's verdict and effect and whether they agree: "agree" (same verdict),
"consistent" (clear in one, the same sign in the other), "sign differs", or
"contradict" (helps in one, hurts in the other). A replication is a second run
of the sweep with disjoint seeds:

  make run OUT=out-b SEED_OFFSET=100
  robarch guidelines compare out/results.db out-b/results.db`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := reportOptions(cmd)
			var as [2]*guidelines.Analysis
			for i, dsn := range args {
				trials, err := readTrials(cmd, dsn, opts.Sweep)
				if err != nil {
					return fmt.Errorf("%s: %w", dsn, err)
				}
				if as[i], err = guidelines.Analyze(trials, opts); err != nil {
					return fmt.Errorf("%s: %w", dsn, err)
				}
			}
			w := cmd.OutOrStdout()
			for i, a := range as {
				fmt.Fprintf(w, "%s: ", args[i])
				guidelines.WriteVerdicts(w, a)
			}
			guidelines.WriteReplication(w, guidelines.Compare(as[0], as[1], args[0], args[1]))
			return nil
		},
	}
	addAnalysisFlags(compare)
	cmd.AddCommand(report, compare)
	return cmd
}

func addAnalysisFlags(cmd *cobra.Command) {
	cmd.Flags().String("sweep", "", "sweep to report on (needed when the store holds several)")
	cmd.Flags().String("metric", "", "robust metric for verdicts: pgd_acc or aa_acc (default: aa_acc when every trial has it)")
	cmd.Flags().Float64("confidence", 0.95, "confidence of the intervals; 1 − confidence is the family-wise error of the verdicts")
	cmd.Flags().Int("resamples", 2000, "bootstrap resamples per interval (random designs)")
}

func reportOptions(cmd *cobra.Command) guidelines.Options {
	var opts guidelines.Options
	opts.Sweep, _ = cmd.Flags().GetString("sweep")
	opts.RobustMetric, _ = cmd.Flags().GetString("metric")
	opts.Resamples, _ = cmd.Flags().GetInt("resamples")
	opts.Confidence, _ = cmd.Flags().GetFloat64("confidence")
	return opts
}

// readTrials lists a sweep's trials from dsn (the --store flag when empty).
func readTrials(cmd *cobra.Command, dsn, sweep string) ([]results.Trial, error) {
	if dsn == "" {
		dsn, _ = cmd.Flags().GetString("store")
	}
	s, err := store.Open(cmd.Context(), dsn)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.List(cmd.Context(), store.Filter{Sweep: sweep})
}
