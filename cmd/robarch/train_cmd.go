package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/sugarme/gotch"
	"golang.org/x/term"

	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/train"
	"github.com/robarch/robarch/trainrun"
)

func newTrainCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a network: standard, Fast-AT (fgsm-rs), PGD-AT or TRADES, with checkpoints and exact resume",
		Long: `Train a network and keep, in --out, a checkpoint per epoch (model.ot is the
epoch with the best PGD accuracy), state.json for --resume, metrics.jsonl
(one line per epoch) and metrics.json (clean_acc and pgd_acc of the chosen
checkpoint on the final evaluation set, as fractions).

A run killed at any point continues with the same command plus --resume and
ends with the numbers an uninterrupted run would give (same seed, same
thread count, CPU).`,
		Example: `  robarch train --model micro --dataset fashion-mnist --method fgsm-rs --eps 0.1 --epochs 5 --out runs/micro-fast
  robarch train --model micro --dataset fashion-mnist --method pgd --eps 0.1 --steps 10 --epochs 10 --out runs/micro-pgd --resume
  robarch train --model spec.yaml --dataset cifar10 --data-dir data/cifar-10-batches-bin --method trades --eps 8/255 --crop-pad 4 --hflip --out runs/trades`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := trainConfigFrom(cmd.Flags(), v)
			if err != nil {
				return err
			}
			if cfg.nproc > 1 && !cfg.launched {
				return launchLocal(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg.nproc, cfg.out)
			}
			return runTrain(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg)
		},
	}
	f := cmd.Flags()
	f.String("model", "", "model: a preset name (robarch arch list shows them) or a spec file (.yaml or .json)")
	f.String("dataset", data.NameFashionMNIST, "dataset: "+strings.Join(data.Names(), ", "))
	f.String("data-dir", "", "directory of the dataset files (default for fashion-mnist: "+data.FashionMNISTDir+")")
	f.Int("train-size", 0, "train on a stratified, seeded subset of this many examples (0 = all)")
	f.Int("test-size", 0, "keep a stratified, seeded subset of this many test examples (0 = all)")
	f.Int("image-size", 0, "image side for imagefolder (default 224) and synthetic (default 28)")

	addRecipeFlags(f)
	f.String("precision", "fp32", "precision of the training forward passes: fp32, bf16 (autocast; CPU and CUDA), fp16 (autocast with loss scaling; CUDA only) or auto (bf16 where the hardware has it, see docs/precision.md); weights, perturbations and evaluations stay fp32")
	f.Int("nproc-per-node", 1, "data-parallel: start this many local processes (torchrun's standalone mode, no Python needed); under torchrun, srun or a PyTorchJob the launcher's RANK/WORLD_SIZE are used instead")
	f.Duration("dist-timeout", dist.DefaultTimeout, "data-parallel: how long a collective waits for the other ranks before failing")

	f.String("out", "", "run directory for checkpoints and metrics (required)")
	f.Bool("resume", false, "continue the run in --out from its last finished epoch")
	f.String("device", "cpu", "device: cpu, cuda or cuda:N")
	f.Int("workers", 0, "data loader goroutines (0 = min(GOMAXPROCS, 4))")
	f.String("progress", "auto", "progress display: auto (a bar on a terminal, log lines otherwise), bar, lines, none")
	f.Int("log-every", 0, "log a progress line every N steps (0 = about ten per epoch)")
	return cmd
}

// trainConfig is the parsed command line of `robarch train`.
type trainConfig struct {
	model, dataset, dataDir string
	trainSize, testSize     int
	imageSize               int
	recipe                  recipe.Recipe
	out                     string
	resume                  bool
	device                  string
	precision               amp.Precision
	threads, workers        int
	format                  model.MemoryFormat
	progress                string
	logEvery                int
	// Data parallelism: nproc local processes to start, or launched (the
	// environment of a launcher, which then wins over nproc).
	nproc       int
	launched    bool
	distEnv     dist.Env
	distTimeout time.Duration
}

// trainConfigFrom reads and checks the flags (and their ROBARCH_* or
// --config equivalents).
func trainConfigFrom(cmdFlags *pflag.FlagSet, v *viper.Viper) (trainConfig, error) {
	c := trainConfig{
		model: v.GetString("model"), dataset: v.GetString("dataset"), dataDir: v.GetString("data-dir"),
		trainSize: v.GetInt("train-size"), testSize: v.GetInt("test-size"), imageSize: v.GetInt("image-size"),
		out: v.GetString("out"), resume: v.GetBool("resume"), device: v.GetString("device"),
		threads: v.GetInt("threads"), workers: v.GetInt("workers"),
		progress: v.GetString("progress"), logEvery: v.GetInt("log-every"),
		nproc: v.GetInt("nproc-per-node"), distTimeout: v.GetDuration("dist-timeout"),
	}
	var err error
	if c.distEnv, c.launched, err = dist.FromEnv(os.Getenv); err != nil {
		return c, fmt.Errorf("data-parallel launch environment: %w", err)
	}
	if err := dist.CheckNprocPerNode(c.nproc, v.GetString("device"), c.launched, true); err != nil {
		return c, err
	}
	if c.format, err = memoryFormat(v); err != nil {
		return c, err
	}
	if c.model == "" {
		return c, fmt.Errorf("--model is required: a preset name or a spec file")
	}
	if c.out == "" {
		return c, fmt.Errorf("--out is required: the run directory for checkpoints and metrics")
	}
	switch c.progress {
	case "auto", "bar", "lines", "none":
	default:
		return c, fmt.Errorf("--progress %q: allowed values are auto, bar, lines, none", c.progress)
	}
	r, err := recipeFromFlags(cmdFlags)
	if err != nil {
		return c, err
	}
	if c.precision, err = amp.Parse(v.GetString("precision")); err != nil {
		return c, fmt.Errorf("--precision: %w", err)
	}
	r = r.WithDefaults()
	if err := r.Validate(); err != nil {
		return c, err
	}
	c.recipe = r
	return c, nil
}

// runTrain resolves the device, precision and process group, then runs
// the job (package trainrun) and prints its summary.
func runTrain(ctx context.Context, stdout, stderr io.Writer, c trainConfig) error {
	device, err := torchrt.ParseDevice(c.device)
	if err != nil {
		return fmt.Errorf("--device: %w", err)
	}
	if c.recipe.Precision, err = amp.ResolveForDevice(c.precision, device); err != nil {
		return fmt.Errorf("--precision: %w", err)
	}
	c.recipe = c.recipe.WithDefaults()
	var group *dist.Group
	if c.launched {
		if device != gotch.CPU {
			return fmt.Errorf("--device %s: data-parallel training on CUDA needs c10d's NCCL backend, which this build does not have yet; use --device cpu (Gloo)", c.device)
		}
		if c.distEnv.Rank > 0 {
			c.progress = "none"
		}
		if group, err = joinGroup(stderr, "data-parallel", c.distEnv, c.distTimeout, &c.threads); err != nil {
			return err
		}
		defer group.Close()
	}
	rt := torchrt.Init(c.threads)
	slog.Debug("torch runtime", "malloc", rt.Malloc, "sysmon", rt.Sysmon)
	job := trainrun.Job{Model: c.model, Dataset: c.dataset, Recipe: c.recipe, Out: c.out, Resume: c.resume,
		Data:   data.Options{Dir: c.dataDir, TrainSize: c.trainSize, TestSize: c.testSize, ImageSize: c.imageSize},
		Device: device, Format: c.format, Workers: c.workers, LogEvery: c.logEvery, Group: group}
	if bar := c.progress == "bar" || (c.progress == "auto" && isTerminal(stderr)); bar {
		job.OnStep, job.LogEvery = progressBar(stderr), -1
	} else if c.progress == "none" {
		job.LogEvery = -1
	}
	res, err := trainrun.Run(ctx, job)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted (%w): finished epochs are checkpointed in %s; rerun the same command with --resume to continue", err, c.out)
	}
	if err != nil || (group != nil && group.Rank() > 0) {
		return err // rank 0 reports
	}
	s := res.Summary
	fmt.Fprintf(stdout, "clean_acc %.4f  pgd_acc %.4f  (PGD-%d, eps %.4g, %d test examples; chosen epoch %d of %d)\n",
		s.CleanAcc, s.PGDAcc, s.PGDSteps, s.EvalEps, s.EvalExamples, s.Epoch, s.EpochsRun)
	fmt.Fprintf(stdout, "training %.0f images/s over %.0f s (%s), evaluation %.0f s (%s), peak RSS %.0f MiB\n",
		s.ImagesPerSec, s.TrainSeconds, s.Precision, s.EvalSeconds, s.EvalPrecision, float64(s.PeakRSSBytes)/(1<<20))
	if s.CatastrophicOverfitting {
		fmt.Fprintf(stdout, "warning: catastrophic overfitting at epoch %d (stopped early: %v)\n", s.OverfitEpoch, s.StoppedEarly)
	}
	fmt.Fprintf(stdout, "checkpoint %s, metrics %s\n", filepath.Join(c.out, s.Checkpoint), filepath.Join(c.out, train.MetricsFile))
	return nil
}

// progressBar returns an OnStep callback drawing one bar per epoch.
func progressBar(w io.Writer) func(train.Progress) {
	var bar *progressbar.ProgressBar
	epoch := 0
	return func(p train.Progress) {
		if p.Epoch != epoch {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(w)
			}
			epoch = p.Epoch
			bar = progressbar.NewOptions(p.Steps, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(),
				progressbar.OptionSetWidth(30), progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", p.Epoch, p.Epochs)))
		}
		bar.Describe(fmt.Sprintf("epoch %d/%d loss %.3f acc %.3f %.0f img/s ETA %s",
			p.Epoch, p.Epochs, p.Loss, p.Acc, p.ImagesPerSec, p.ETA))
		_ = bar.Set(p.Step)
		if p.Step == p.Steps {
			_ = bar.Finish()
			fmt.Fprintln(w)
			bar, epoch = nil, 0
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
