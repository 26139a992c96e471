package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/train"
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
	f.String("attacks", "pgd20,aa", "comma-separated attacks: "+strings.Join(attack.Names(), ", "))
	f.String("eps", "8/255", "radius: a fraction (0.1), a ratio (8/255) or pixel levels (8px); L2 radii may exceed 1")
	f.String("norm", string(attack.Linf), "threat model: Linf or L2")
	f.Int64("seed", 0, "seed of the attacks' randomness")
	f.Int("batch-size", 256, "evaluation batch size")
	f.String("device", "cpu", "device: cpu, cuda or cuda:N")
	f.Int("workers", 0, "data loader goroutines (0 = min(GOMAXPROCS, 4))")
	f.String("precision", "fp32", "precision of the network's forward passes: fp32 (default: low-precision attacks can produce weaker gradients and overstate robustness) or bf16 (autocast; the result says so); perturbations and projections stay fp32")
	f.Bool("skip-checks", false, "skip the sanity checks")
	f.Bool("json", false, "print one JSON object instead of a table")
	f.String("protocol", protocolRobArch, "test points and attacks: robarch (a stratified --size subset, the --attacks given) or robustbench (RobustBench's: the first --size test points in file order, 10,000 for CIFAR and its fixed 5,000-image list for ImageNet (imagefolder:DIR), standard AutoAttack, its eps unless --eps is given)")
	f.Int("nproc-per-node", 1, "split the test points across this many local processes by whole batches and sum the counts (the same accuracies as one process); under torchrun, srun or a PyTorchJob the launcher's RANK/WORLD_SIZE are used instead; with --device cuda each process takes cuda:LOCAL_RANK")
	f.Duration("dist-timeout", dist.DefaultTimeout, "with several processes: how long a collective waits for the others before failing")
	f.String("model-info", "", "with --protocol robustbench: write (or update) RobustBench's model_info JSON at this path (clean_acc, autoattack_acc, eps, dataset, number_forward_passes)")
	return cmd
}

// evalConfig is the parsed command line of `robarch eval`.
type evalConfig struct {
	model, weights, dataset, dataDir string
	size, imageSize, batchSize       int
	attacks                          []string
	eps                              float64
	norm                             attack.Norm
	seed                             int64
	device                           string
	threads, workers                 int
	skipChecks, json                 bool
	format                           model.MemoryFormat
	precision                        amp.Precision
	// protocol is protocolRobArch or protocolRobustBench; rbDataset and
	// epsText are RobustBench's dataset name and the radius as written,
	// for --model-info.
	protocol, rbDataset, epsText, modelInfo string
	// from says where eps, norm and dataset came from: "flag", "checkpoint"
	// (what the net was trained and reported at) or "default"; trainedEps
	// is the checkpoint's radius when it has one.
	from       map[string]string
	trainedEps float64
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
	c.model, _ = f.GetString("model")
	c.weights, _ = f.GetString("weights")
	c.dataset, _ = f.GetString("dataset")
	c.dataDir, _ = f.GetString("data-dir")
	c.size, _ = f.GetInt("size")
	c.imageSize, _ = f.GetInt("image-size")
	c.batchSize, _ = f.GetInt("batch-size")
	c.seed, _ = f.GetInt64("seed")
	c.device, _ = f.GetString("device")
	c.workers, _ = f.GetInt("workers")
	c.skipChecks, _ = f.GetBool("skip-checks")
	c.json, _ = f.GetBool("json")
	c.threads, _ = f.GetInt("threads") // the root's persistent flags, when there are
	c.nproc, _ = f.GetInt("nproc-per-node")
	c.distTimeout, _ = f.GetDuration("dist-timeout")
	format, _ := f.GetString("memory-format")
	var err error
	if c.format, err = model.ParseMemoryFormat(format); err != nil {
		return c, fmt.Errorf("--memory-format: %w", err)
	}
	precision, _ := f.GetString("precision")
	if c.precision, err = amp.Parse(precision); err != nil {
		return c, fmt.Errorf("--precision: %w", err)
	}
	if c.precision == amp.Auto {
		// auto is a training choice; an evaluation stays fp32 unless asked.
		c.precision = amp.FP32
	}
	if c.distEnv, c.launched, err = dist.FromEnv(os.Getenv); err != nil {
		return c, err
	}
	if err := checkNproc(c.nproc, c.device, c.launched, false); err != nil {
		return c, err
	}
	if c.weights == "" {
		return c, fmt.Errorf("--weights is required: a robarch checkpoint or a state dict for --model")
	}
	if c.size < 0 {
		return c, fmt.Errorf("--size %d: want 0 (all) or a positive number of test examples", c.size)
	}
	if c.batchSize < 1 {
		return c, fmt.Errorf("--batch-size %d: want at least 1", c.batchSize)
	}
	normFlag, _ := f.GetString("norm")
	epsFlag, _ := f.GetString("eps")
	c.protocol, _ = f.GetString("protocol")
	c.from = map[string]string{"eps": "default", "norm": "default", "dataset": "default"}
	for _, k := range []string{"eps", "norm", "dataset"} {
		if f.Changed(k) {
			c.from[k] = "flag"
		}
	}
	if info, err := model.ReadCheckpointInfo(c.weights); err == nil && c.protocol != protocolRobustBench {
		// A checkpoint is evaluated where it was trained and reported
		// unless told otherwise: evaluating at another radius is the
		// field's classic protocol mistake.
		trained := map[string]string{"eps": info.Meta["eval_eps"], "norm": info.Meta["norm"], "dataset": info.Meta["dataset"]}
		if trained["eps"] == "" {
			trained["eps"] = info.Meta["eps"] // checkpoints from before eval_eps was stored
		}
		if v, err := strconv.ParseFloat(trained["eps"], 64); err == nil && v > 0 {
			c.trainedEps = v
		}
		for k, v := range trained {
			if v == "" || c.from[k] == "flag" {
				continue
			}
			switch k {
			case "eps":
				epsFlag = v
			case "norm":
				normFlag = v
			case "dataset":
				c.dataset = v
			}
			c.from[k] = "checkpoint"
		}
	}
	if c.norm, err = attack.ParseNorm(normFlag); err != nil {
		return c, fmt.Errorf("--norm: %w", err)
	}
	c.modelInfo, _ = f.GetString("model-info")
	if !slices.Contains(protocols, c.protocol) {
		return c, fmt.Errorf("--protocol %q: want one of %s", c.protocol, strings.Join(protocols, ", "))
	}
	if c.protocol == protocolRobustBench {
		if c.rbDataset, err = rbDataset(c.dataset); err != nil {
			return c, err
		}
		if !f.Changed("size") {
			c.size = 0 // RobustBench's default count
		}
		if !f.Changed("eps") {
			if epsFlag, err = rbDefaultEps(c.rbDataset, c.norm); err != nil {
				return c, err
			}
		}
		if list, _ := f.GetString("attacks"); f.Changed("attacks") && strings.TrimSpace(list) != "aa" {
			return c, fmt.Errorf("--attacks %q with --protocol robustbench: RobustBench runs standard AutoAttack only; leave --attacks unset (or aa)", list)
		}
		_ = f.Set("attacks", "aa")
	} else if c.modelInfo != "" {
		return c, fmt.Errorf("--model-info needs --protocol robustbench: its numbers only mean something under RobustBench's protocol")
	}
	c.epsText = epsFlag
	if c.norm == attack.Linf {
		c.eps, err = recipe.ParseEps(epsFlag)
	} else {
		c.eps, err = recipe.ParseL2Eps(epsFlag)
	}
	if err != nil {
		return c, fmt.Errorf("--eps: %w", err)
	}
	list, _ := f.GetString("attacks")
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			c.attacks = append(c.attacks, name)
		}
	}
	if len(c.attacks) == 0 {
		return c, fmt.Errorf("--attacks is empty: want a comma-separated list of %s", strings.Join(attack.Names(), ", "))
	}
	for _, name := range c.attacks {
		if _, err := attack.ByName(name, c.norm, c.eps, c.seed); err != nil {
			return c, fmt.Errorf("--attacks: %w", err)
		}
	}
	return c, nil
}

// evalResult is what --json prints: the attack report and what it is of.
type evalResult struct {
	attack.Report
	Model   string  `json:"model"`
	Params  int64   `json:"params"`
	Weights string  `json:"weights"`
	Dataset string  `json:"dataset"`
	Eps     float64 `json:"eps"`
	Norm    string  `json:"norm"`
	Seed    int64   `json:"seed"`
	// Precision of the forward passes; anything but fp32 is flagged.
	Precision string `json:"precision"`
	// From says where eps, norm and dataset came from (flag, checkpoint,
	// default); TrainedEps is the radius the checkpoint was trained and
	// reported at, when it says.
	From       map[string]string `json:"from"`
	TrainedEps float64           `json:"trained_eps,omitempty"`
}

func runEval(ctx context.Context, stdout, stderr io.Writer, c evalConfig) error {
	device, err := torchrt.ParseDevice(c.device)
	if err != nil {
		return fmt.Errorf("--device: %w", err)
	}
	var shard *attack.Shard
	if c.launched {
		group, err := joinGroup(stderr, "sharded evaluation", c.distEnv, c.distTimeout, &c.threads)
		if err != nil {
			return err
		}
		defer group.Close()
		shard = train.ShardFor(group)
		if c.device == "cuda" { // each local process its own GPU
			if device, err = torchrt.ParseDevice(fmt.Sprintf("cuda:%d", c.distEnv.LocalRank)); err != nil {
				return fmt.Errorf("--device: %w", err)
			}
		}
	}
	rt := torchrt.Init(c.threads)
	slog.Debug("torch runtime", "malloc", rt.Malloc, "sysmon", rt.Sysmon)
	if _, err := os.Stat(c.weights); err != nil {
		return fmt.Errorf("--weights: %w", err)
	}
	var splits *data.Splits
	if c.protocol == protocolRobustBench {
		splits, err = openRobustBench(c.dataset, c.dataDir, c.size)
	} else {
		// Subset seed 0: every evaluation of a dataset sees the same examples.
		splits, err = data.Open(c.dataset, data.Options{Dir: c.dataDir, TestSize: c.size, ImageSize: c.imageSize})
	}
	if err != nil {
		return err
	}
	attacks := make([]attack.Attack, len(c.attacks))
	for i, name := range c.attacks {
		if attacks[i], err = attack.ByName(name, c.norm, c.eps, c.seed); err != nil {
			return fmt.Errorf("--attacks: %w", err)
		}
	}
	points := splits.Test
	if shard != nil {
		// This process's batches; every attack reseeds per batch, so the
		// summed counts equal one process's.
		if points, err = data.ShardBatches(points, c.batchSize, shard.Rank, shard.Size); err != nil {
			return err
		}
	}
	loader, err := data.NewLoader(points, data.LoaderConfig{BatchSize: c.batchSize, Workers: c.workers})
	if err != nil {
		return err
	}

	if err := amp.Check(c.precision, device); err != nil {
		return fmt.Errorf("--precision: %w", err)
	}
	warnIfEmulated(c.precision, device)
	res := evalResult{Weights: c.weights, Dataset: c.dataset, Eps: c.eps, Norm: string(c.norm), Seed: c.seed, Precision: string(c.precision),
		From: c.from, TrainedEps: c.trainedEps}
	if offRadius(c) {
		slog.Warn("evaluating at a radius other than the one the checkpoint was trained and reported at", "eps", c.eps, "trained_eps", c.trainedEps)
	}
	w := torchrt.NewWorker()
	defer w.Close()
	err = w.Do(func() error {
		opened, err := openEvalNet(device, c.format, c.model, c.weights, splits)
		if err != nil {
			return err
		}
		defer opened.Vars.Destroy()
		net, name := opened.Net, opened.Name
		res.Model, res.Params = name, net.NumParams()
		// Batch norms folded into the convolutions: the same function
		// with fewer ops (model.Folded).
		folded, err := net.Fold()
		if err != nil {
			return err
		}
		defer folded.Close()
		slog.Info("evaluating", "model", name, "params", net.NumParams(), "dataset", c.dataset, "examples", splits.Test.Len(),
			"attacks", strings.Join(c.attacks, ","), "eps", c.eps, "norm", c.norm, "device", c.device, "threads", torchrt.Threads(),
			"memory_format", net.MemoryFormat(), "folded_norms", folded.Norms, "precision", c.precision)
		m := folded.Forward
		if c.precision != amp.FP32 {
			slog.Warn("evaluating in low precision: attacks' gradients may be weaker and robust accuracy overstated", "precision", c.precision)
			low, err := amp.Wrap(folded, device, c.precision)
			if err != nil {
				return err
			}
			m = attack.FromModuleT(low)
		}
		res.Report, err = attack.Evaluate(ctx, m, torchbatch.Stream(ctx, loader, device, attack.NewBatch), attacks, attack.EvalOptions{SkipChecks: c.skipChecks, Shard: shard})
		return err
	})
	if err != nil {
		return err
	}
	if shard != nil && shard.Rank > 0 {
		return nil // rank 0 prints and writes
	}
	if c.modelInfo != "" {
		if err := writeModelInfo(c.modelInfo, c.rbDataset, c.epsText, res.CleanAcc, res.RobustAcc); err != nil {
			return err
		}
		slog.Info("wrote RobustBench model_info", "path", c.modelInfo)
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printEvalTable(stdout, res)
	return nil
}

// openEvalNet opens the network to evaluate through model.Open, naming
// the flags in its errors.
func openEvalNet(device gotch.Device, f model.MemoryFormat, name, weights string, splits *data.Splits) (*model.Opened, error) {
	shape := splits.Shape()
	o, err := model.Open(model.Ref{Model: name, Weights: weights}, model.OpenOptions{Device: device, Format: f, Data: &shape})
	switch {
	case errors.Is(err, model.ErrNoModel):
		return nil, fmt.Errorf("--model is required: %w", err)
	case err != nil && name != "":
		return nil, fmt.Errorf("--model/--weights: %w", err)
	case err != nil:
		return nil, fmt.Errorf("--weights: %w", err)
	}
	return o, nil
}

// offRadius reports an evaluation at a radius other than the
// checkpoint's own.
func offRadius(c evalConfig) bool {
	return c.trainedEps > 0 && math.Abs(c.eps-c.trainedEps) > 1e-12
}

func fromWord(from string) string {
	switch from {
	case "flag":
		return "command line"
	case "checkpoint":
		return "checkpoint"
	}
	return "defaults"
}

func printEvalTable(w io.Writer, r evalResult) {
	fmt.Fprintf(w, "%s (%d parameters) on %s: %d examples, %s eps %.4g, seed %d, %s forward passes\n", r.Model, r.Params, r.Dataset, r.N, r.Norm, r.Eps, r.Seed, r.Precision)
	fmt.Fprintf(w, "eps from the %s, norm from the %s, dataset from the %s\n", fromWord(r.From["eps"]), fromWord(r.From["norm"]), fromWord(r.From["dataset"]))
	if r.TrainedEps > 0 && math.Abs(r.Eps-r.TrainedEps) > 1e-12 {
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
	_ = tw.Flush()
	for _, warning := range r.Warnings {
		fmt.Fprintf(w, "\nwarning: %s\n", warning)
	}
}
