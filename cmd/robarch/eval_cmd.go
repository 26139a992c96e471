package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/evaluation"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/attackname"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/robustbench"
)

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure a trained network's clean and robust accuracy under PGD, AutoAttack and friends",
		Long: `Evaluate a network on a test set: clean accuracy, each attack's robust accuracy
on its own, and the worst case over all attacks (a sample counts as robust
only if no attack fooled it), with the number of samples. AutoAttack (aa)
also reports the accuracy after each of its components.

Before attacking, the sanity checks of AutoAttack's authors run on the first
batch (randomised model, probabilities instead of logits, zero gradients); at
the end a warning appears if the black-box Square attack beat the white-box
attacks. Accuracies are fractions.

Attacks: ` + strings.Join(attack.Names(), ", ") + `.`,
		Example: `  robarch eval --weights runs/micro-fast/model.safetensors --attacks pgd20,aa --eps 0.1
  robarch eval --model resnet18-cifar --weights resnet18.pt --dataset cifar10 --data-dir data/cifar-10-batches-bin --attacks pgd20,aa --eps 8/255 --json
  robarch eval --weights model.safetensors --norm L2 --eps 0.5 --attacks apgd-ce,apgd-t,fab-t,square --size 500
  robarch eval --protocol robustbench --model rb-rawrn-70-16 --weights Peng2023Robust.pt --dataset cifar10 --data-dir data/cifar-10-batches-bin --model-info Peng2023Robust.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := evalConfigFrom(cmd)
			if err != nil {
				return err
			}
			if c.nproc > 1 && !c.launched {
				return launchLocal(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), c.nproc, "")
			}
			return runEval(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), c)
		},
	}
	f := cmd.Flags()
	f.String("model", "", "model: a preset name or spec file (not needed when --weights is a robarch checkpoint, which carries its spec)")
	f.String("weights", "", "weights: a robarch checkpoint (model.safetensors from robarch train) or a state dict (.pt, .pth, .safetensors) for --model (required)")
	f.String("dataset", data.NameFashionMNIST, "dataset: "+strings.Join(data.Names(), ", "))
	f.String("data-dir", "", "directory of the dataset files (default for fashion-mnist: "+data.FashionMNISTDir+")")
	f.Int("size", 1000, "attack a stratified subset of this many test examples, the same for every run (0 = the whole test split)")
	f.Int("image-size", 0, "image side for imagefolder (default 224) and synthetic (default 28)")
	f.String("attacks", attackname.PGDSteps(recipe.DefaultFinalSteps).String()+","+string(attackname.AA), "comma-separated attacks: "+strings.Join(attack.Names(), ", "))
	f.String("eps", recipe.FormatEps(recipe.DefaultEps), "radius: a fraction (0.1), a ratio (8/255) or pixel levels (8px); L2 radii may exceed 1")
	f.String("norm", string(attack.Linf), "threat model: Linf or L2")
	f.Int64("seed", 0, "seed of the attacks' randomness")
	f.Int("batch-size", 256, "evaluation batch size")
	f.String("device", "cpu", "device: cpu, cuda or cuda:N")
	f.Int("workers", 0, "data loader goroutines (0 = min(GOMAXPROCS, 4))")
	f.String("precision", "fp32", "precision of the network's forward passes: fp32 (default: low-precision attacks can produce weaker gradients and overstate robustness) or bf16 (autocast; the result says so); perturbations and projections stay fp32")
	f.Bool("skip-checks", false, "skip the sanity checks")
	f.Bool("json", false, "print one JSON object instead of a table")
	f.String("protocol", evaluation.RobArch, "test points and attacks: robarch (a stratified --size subset, the --attacks given) or robustbench (RobustBench's: the first --size test points in file order, 10,000 for CIFAR and its fixed 5,000-image list for ImageNet (imagefolder:DIR), standard AutoAttack, its eps unless --eps is given)")
	f.Int("nproc-per-node", 1, "split the test points across this many local processes by whole batches and sum the counts (the same accuracies as one process); under torchrun, srun or a PyTorchJob the launcher's RANK/WORLD_SIZE are used instead; with --device cuda each process takes cuda:LOCAL_RANK")
	f.Duration("dist-timeout", dist.DefaultTimeout, "with several processes: how long a collective waits for the others before failing")
	f.String("model-info", "", "with --protocol robustbench: write (or update) RobustBench's model_info JSON at this path (clean_acc, autoattack_acc, eps, dataset, number_forward_passes)")
	return cmd
}

// evalConfig is the parsed command line of `robarch eval`: the settings
// resolved (evaluation.Resolve), how to run, and where to write.
type evalConfig struct {
	evaluation.Settings
	opts      evaluation.Options
	device    string
	threads   int
	json      bool
	modelInfo string
	// Several processes: nproc local ones to start, or launched (the
	// environment of a launcher, which then wins over nproc).
	nproc       int
	launched    bool
	distEnv     dist.Env
	distTimeout time.Duration
}

func evalConfigFrom(cmd *cobra.Command) (evalConfig, error) {
	f := cmd.Flags()
	var c evalConfig
	o := &c.opts
	o.Model, _ = f.GetString("model")
	o.Weights, _ = f.GetString("weights")
	o.DataDir, _ = f.GetString("data-dir")
	o.ImageSize, _ = f.GetInt("image-size")
	o.BatchSize, _ = f.GetInt("batch-size")
	o.Workers, _ = f.GetInt("workers")
	o.SkipChecks, _ = f.GetBool("skip-checks")
	c.device, _ = f.GetString("device")
	c.json, _ = f.GetBool("json")
	c.threads, _ = f.GetInt("threads") // the root's persistent flags, when there are
	c.nproc, _ = f.GetInt("nproc-per-node")
	c.distTimeout, _ = f.GetDuration("dist-timeout")
	c.modelInfo, _ = f.GetString("model-info")
	var err error
	format, _ := f.GetString("memory-format")
	precision, _ := f.GetString("precision")
	if o.Format, o.Precision, err = evaluation.ParseFormats(format, precision); err != nil {
		return c, err
	}
	if c.distEnv, c.launched, err = dist.FromEnv(os.Getenv); err != nil {
		return c, err
	}
	if err := dist.CheckNprocPerNode(c.nproc, c.device, c.launched, false); err != nil {
		return c, err
	}
	r := evaluation.Request{ModelInfo: c.modelInfo, Given: map[string]bool{}}
	r.Protocol, _ = f.GetString("protocol")
	r.Dataset, _ = f.GetString("dataset")
	r.Eps, _ = f.GetString("eps")
	r.Norm, _ = f.GetString("norm")
	r.Size, _ = f.GetInt("size")
	r.Attacks, _ = f.GetString("attacks")
	r.Seed, _ = f.GetInt64("seed")
	for _, k := range []string{"eps", "norm", "dataset", "size", "attacks"} {
		r.Given[k] = f.Changed(k)
	}
	switch {
	case o.Weights == "":
		return c, fmt.Errorf("--weights is required: a robarch checkpoint or a state dict for --model")
	case r.Size < 0:
		return c, fmt.Errorf("--size %d: want 0 (all) or a positive number of test examples", r.Size)
	case o.BatchSize < 1:
		return c, fmt.Errorf("--batch-size %d: want at least 1", o.BatchSize)
	}
	if info, err := model.ReadCheckpointInfo(o.Weights); err == nil {
		r.Checkpoint = info.Meta
	}
	c.Settings, err = evaluation.Resolve(r)
	return c, err
}

func runEval(ctx context.Context, stdout, stderr io.Writer, c evalConfig) error {
	if _, err := torchrt.ParseDevice(c.device); err != nil {
		return fmt.Errorf("--device: %w", err)
	}
	if c.launched {
		group, err := joinGroup(stderr, "sharded evaluation", c.distEnv, c.distTimeout, &c.threads)
		if err != nil {
			return err
		}
		defer group.Close()
		c.opts.Group = group
	}
	device, err := evaluation.Device(c.device, c.opts.Group)
	if err != nil {
		return err
	}
	c.opts.Device, c.opts.DeviceName = device, c.device
	rt := torchrt.Init(c.threads)
	slog.Debug("torch runtime", "malloc", rt.Malloc, "sysmon", rt.Sysmon)
	if err := amp.Check(c.opts.Precision, device); err != nil {
		return fmt.Errorf("--precision: %w", err)
	}
	amp.WarnIfEmulated(c.opts.Precision, device)
	res, err := evaluation.Run(ctx, c.Settings, c.opts)
	if err != nil {
		return err
	}
	if c.opts.Group != nil && c.opts.Group.Rank() > 0 {
		return nil // rank 0 prints and writes
	}
	if c.modelInfo != "" {
		mi := robustbench.ModelInfo{Dataset: c.RBDataset, Eps: c.EpsText, Clean: res.CleanAcc, Robust: res.RobustAcc}
		if err := robustbench.WriteModelInfo(c.modelInfo, mi); err != nil {
			return fmt.Errorf("--model-info: %w", err)
		}
		slog.Info("wrote RobustBench model_info", "path", c.modelInfo)
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return evaluation.WriteTable(stdout, res)
}
