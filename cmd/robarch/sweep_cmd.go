package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/robarch/robarch/internal/attackname"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/planreport"
	"github.com/robarch/robarch/sweep/statusview"
	"github.com/robarch/robarch/sweep/store"
	"github.com/robarch/robarch/sweep/sweeprun"
	sweepworkers "github.com/robarch/robarch/sweep/workers"
)

func addSweepFileFlags(fs *pflag.FlagSet) {
	fs.String("sweep", "fashion-mnist-micro", "sweep: a shipped name ("+strings.Join(sweep.ShippedSweeps(), ", ")+") or a YAML file")
	fs.String("budget", "", "parameter budget, e.g. 26M, 500K, 1.5M, 26143228 (default: the sweep file's)")
	fs.Float64("tolerance", 0, "allowed distance to the budget, a fraction (default 0.02)")
	fs.String("design", "", "ofat (one factor at a time) or random")
	fs.Int("samples", 0, "variants to sample with --design random")
	fs.Int64Slice("seeds", nil, "training seeds per variant, e.g. 0,1,2 (replaces the sweep file's list or policy)")
	fs.Int64("seed-offset", 0, "add this to every seed: a second run with a disjoint offset replicates the study independently")
	fs.String("dataset", "", "fashion-mnist, mnist, cifar10, cifar100, imagefolder:DIR or synthetic")
	fs.String("data-dir", "", "dataset folder")
	fs.Int("train-size", 0, "training examples (stratified subset; 0 = the sweep file's)")
	fs.Int("test-size", 0, "test examples (stratified subset)")
	fs.String("method", "", "training method: standard, fgsm-rs, pgd, trades")
	fs.Int("epochs", 0, "training epochs")
	fs.String("eps", "", "training radius (L∞): 8/255, 8px (the same) or a fraction such as 0.03")
	fs.String("eval-eps", "", "evaluation radius, written as --eps")
	fs.Int("final-size", 0, "test examples attacked in each trial's final evaluation (as robarch train --final-size)")
	// Its old name meant what --final-size does; in robarch train
	// --eval-size is the per-epoch subset. One meaning per name: refused.
	fs.Int("eval-size", 0, "removed: use --final-size (robarch train's --eval-size is the per-epoch subset, a different thing)")
	_ = fs.MarkHidden("eval-size")
	fs.StringSlice("attacks", nil, "evaluation attacks: "+strings.Join(attackname.Names(), ", "))
	fs.String("precision", "", "training precision: fp32, bf16 or auto (evaluations stay fp32)")
	fs.String("device", "", "cpu, cuda or cuda:N")
	fs.StringArray("set", nil, "replace any sweep-file key, value written as in the file (YAML): --set train.lr=0.05 --set 'seeds={start: 3, add: 2, max: 5}' (repeatable; keys in docs/sweep-file.md)")
}

// loadSweep reads the sweep file; the flags of sweep.FlagKeys that were
// given (flag, ROBARCH_SWEEP_*, --config: bindFlags) replace its keys.
func loadSweep(cmd *cobra.Command) (*sweep.File, error) {
	fs := cmd.Flags()
	if fl := fs.Lookup("eval-size"); fl != nil && fl.Changed {
		return nil, fmt.Errorf("--eval-size %s: robarch sweep calls it --final-size now (the test examples of each trial's final evaluation, sweep key eval.size); in robarch train --eval-size is the per-epoch subset", fl.Value)
	}
	o := sweep.Overrides{Flags: map[string]sweep.FlagValue{}}
	o.Set, _ = fs.GetStringArray("set")
	o.SeedOffset, _ = fs.GetInt64("seed-offset")
	fs.Visit(func(fl *pflag.Flag) { o.Flags[fl.Name] = fl.Value })
	name, _ := fs.GetString("sweep")
	return o.Load(name)
}

func newSweepCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Plan budget-matched variants, train and attack each, store every result",
		Long: `sweep turns a baseline and a list of architecture factors into variants
refitted to one parameter budget, then trains and attacks every (variant, seed)
trial and stores the results. Running the same command again resumes: finished
trials are kept, interrupted ones continue from their last epoch checkpoint.

  robarch sweep --sweep robarch-imagenet-26m --budget 26M --dry-run
  robarch sweep --sweep fashion-mnist-micro --store out/results.db --work out/trials`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSweep(cmd, v) },
	}
	addSweepFileFlags(cmd.Flags())
	addRunFlags(cmd.Flags())
	cmd.Flags().Bool("dry-run", false, "print the plan (params, MACs, deviation from budget) and stop; needs no libtorch work")
	cmd.Flags().Bool("json", false, "with --dry-run: print the plan as a JSON array")

	run := &cobra.Command{
		Use: "run", Short: "Plan, enqueue and run a sweep (same as `robarch sweep`)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSweep(cmd, v) },
	}
	addSweepFileFlags(run.Flags())
	addRunFlags(run.Flags())
	run.Flags().Bool("dry-run", false, "print the plan and stop")
	run.Flags().Bool("json", false, "with --dry-run: print the plan as JSON")

	cmd.AddCommand(run, newSweepPlanCmd(), newSweepWorkerCmd(v), newSweepEnqueueCmd(), newSweepStatusCmd(), newSweepRetryCmd(), newSweepTrialCmd(v))
	return cmd
}

func newSweepPlanCmd() *cobra.Command {
	plan := &cobra.Command{
		Use: "plan", Short: "Print every variant with its exact parameter count, MACs and deviation from the budget", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadSweep(cmd)
			if err != nil {
				return err
			}
			asJSON, _ := cmd.Flags().GetBool("json")
			return printPlan(cmd.OutOrStdout(), f, asJSON)
		},
	}
	addSweepFileFlags(plan.Flags())
	plan.Flags().Bool("json", false, "print a JSON array")
	return plan
}

func newSweepWorkerCmd(v *viper.Viper) *cobra.Command {
	worker := &cobra.Command{
		Use:   "worker",
		Short: "Claim and run trials from a shared store (e.g. PostgreSQL) until the sweep is finished",
		Long: `worker runs trials that were enqueued by "robarch sweep" (or "sweep enqueue")
into a shared store. Start any number of workers on any machines; each trial
runs exactly once, and a dead worker's trial is taken over when its lease ends.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWorker(cmd, v) },
	}
	addRunFlags(worker.Flags())
	worker.Flags().String("name", "", "sweep to work on (default: any sweep in the store)")
	return worker
}

func newSweepEnqueueCmd() *cobra.Command {
	enqueue := &cobra.Command{
		Use: "enqueue", Short: "Plan a sweep and add its trials to the store without running them", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadSweep(cmd)
			if err != nil {
				return err
			}
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = sweeprun.PlanAndEnqueue(cmd.Context(), s, f, sweeprun.PreflightOptions{})
			return err
		},
	}
	addSweepFileFlags(enqueue.Flags())
	enqueue.Flags().String("store", "results.db", "results store: a SQLite file or postgres://...")
	return enqueue
}

func newSweepStatusCmd() *cobra.Command {
	status := &cobra.Command{
		Use: "status", Short: "Count a store's trials by status", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			return statusview.WriteCounts(cmd.Context(), cmd.OutOrStdout(), s)
		},
	}
	status.Flags().String("store", "results.db", "results store: a SQLite file or postgres://...")
	return status
}

func newSweepRetryCmd() *cobra.Command {
	retry := &cobra.Command{
		Use: "retry", Short: "Put failed trials (and, with --running, abandoned running ones) back in the queue", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			name, _ := cmd.Flags().GetString("name")
			from := []results.Status{results.StatusFailed}
			if r, _ := cmd.Flags().GetBool("running"); r {
				from = append(from, results.StatusRunning)
			}
			n, err := s.Requeue(cmd.Context(), name, from...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d trial(s) re-queued\n", n)
			return nil
		},
	}
	retry.Flags().String("store", "results.db", "results store")
	retry.Flags().String("name", "", "sweep (default: all)")
	retry.Flags().Bool("running", false, "also re-queue running trials (only when no worker is alive)")
	return retry
}

func addRunFlags(fs *pflag.FlagSet) {
	fs.String("store", "results.db", "results store: a SQLite file or postgres://user@host/db")
	fs.String("work", "trials", "folder for trial checkpoints (resume state)")
	fs.Duration("lease", 2*time.Minute, "how long a claimed trial stays ours without a heartbeat")
	fs.Bool("no-wait", false, "stop when nothing is pending, even while other workers still run trials (default: wait for them, taking over any whose worker dies)")
	fs.String("progress", "auto", "progress display: auto (bars on a terminal, log lines otherwise), bar, lines, none")
	fs.Int("workers", 1, "trials run at once on this machine: this process and N-1 helper `sweep worker` processes on the same store, --threads split among them (results depend on each trial's thread count; docs/precision.md)")
}

func openStore(cmd *cobra.Command) (store.Store, error) {
	dsn, _ := cmd.Flags().GetString("store")
	return store.Open(cmd.Context(), dsn)
}

// printPlan prints the plan, then reports what would stop its trials
// (sweeprun.Preflight), so that a dry run fails where the real run would.
func printPlan(w io.Writer, f *sweep.File, asJSON bool) error {
	p, err := sweep.MakePlan(f)
	if err != nil {
		return err
	}
	if asJSON {
		err = planreport.WriteJSON(w, p)
	} else {
		err = planreport.Write(w, f, p)
	}
	if err != nil {
		return err
	}
	return sweeprun.Preflight(f, p, sweeprun.PreflightOptions{DeviceAvailable: true})
}

// workersFlag is --workers, checked.
func workersFlag(cmd *cobra.Command) (int, error) {
	n, _ := cmd.Flags().GetInt("workers")
	if n < 1 {
		return 0, fmt.Errorf("--workers %d: must be at least 1 (trials run at once on this machine)", n)
	}
	return n, nil
}

func runSweep(cmd *cobra.Command, v *viper.Viper) error {
	if _, err := workersFlag(cmd); err != nil {
		return err // before the store is touched
	}
	f, err := loadSweep(cmd)
	if err != nil {
		return err
	}
	if dry, _ := cmd.Flags().GetBool("dry-run"); dry {
		asJSON, _ := cmd.Flags().GetBool("json")
		return printPlan(cmd.OutOrStdout(), f, asJSON)
	}
	s, err := openStore(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := sweeprun.PlanAndEnqueue(cmd.Context(), s, f, sweeprun.PreflightOptions{DeviceAvailable: true}); err != nil {
		return err
	}
	sweeprun.LogTrainPrecision(f)
	return work(cmd, v, s, f.Name)
}

func runWorker(cmd *cobra.Command, v *viper.Viper) error {
	s, err := openStore(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	name, _ := cmd.Flags().GetString("name")
	return work(cmd, v, s, name)
}

func work(cmd *cobra.Command, v *viper.Viper, s store.Store, sweepName string) error {
	format, err := memoryFormat(v)
	if err != nil {
		return err
	}
	progress, _ := cmd.Flags().GetString("progress")
	switch progress {
	case "auto", "bar", "lines", "none":
	default:
		return fmt.Errorf("--progress %q: allowed values are auto, bar, lines, none", progress)
	}
	noWait, _ := cmd.Flags().GetBool("no-wait")
	workers, err := workersFlag(cmd)
	if err != nil {
		return err
	}
	threads := v.GetInt("threads")
	if workers > 1 {
		threads = sweepworkers.Threads(threads, workers)
	}
	rt := torchrt.Init(threads)
	slog.Debug("torch runtime", "malloc", rt.Malloc, "sysmon", rt.Sysmon)
	workDir, _ := cmd.Flags().GetString("work")
	lease, _ := cmd.Flags().GetDuration("lease")
	dsn, _ := cmd.Flags().GetString("store")
	exec := sweeprun.NewExecutor(format)
	r := &sweeprun.Runner{Store: s, WorkDir: workDir, Lease: lease, Wait: !noWait, Env: sweepworkers.Env(version, string(format))}
	// Helper workers' lines, and the ranks' of a data-parallel trial, join
	// this worker's log.
	local := sweepworkers.Local{Runner: r, Trial: exec.Run, Workers: workers, Threads: threads, Store: dsn,
		MemoryFormat: string(format), LogLevel: v.GetString("log-level"), LogTo: cmd.ErrOrStderr()}
	stderr := cmd.ErrOrStderr()
	switch {
	case progress == "bar" || (progress == "auto" && isTerminal(stderr)):
		// Log lines scroll above the two bars; per-step lines give way to
		// the trial's bar.
		d := statusview.NewDisplay(stderr)
		defer d.Close()
		restore := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(d, &slog.HandlerOptions{Level: logLevel(v)})))
		defer slog.SetDefault(restore)
		r.OnProgress, exec.OnStep, exec.LogEvery = d.Sweep, d.Step, -1
		local.LogTo = d
	case progress == "none":
		exec.LogEvery = -1
	}
	st, err := local.Work(cmd.Context(), sweepName)
	slog.Info("worker stopped", "done", st.Done, "failed", st.Failed, "seconds", fmt.Sprintf("%.0f", st.Seconds))
	if err != nil && cmd.Context().Err() != nil {
		return fmt.Errorf("interrupted: run the same command again to resume")
	}
	if err == nil && st.Failed > 0 {
		// The other trials ran; the exit status still tells scripts and CI.
		return fmt.Errorf("%d trial(s) failed (errors in `robarch results export --status failed`); `robarch sweep retry` re-queues them", st.Failed)
	}
	return err
}
