package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/bench"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/prepare"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
)

func newBenchCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "bench",
		Short:   "Measure training, attack and inference throughput, side by side with PyTorch eager",
		Long:    benchLong,
		Example: benchExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v.GetString("dataset") != "" {
				return runFolderBench(cmd, v)
			}
			cfg, asJSON, err := benchConfigFrom(cmd, v)
			if err != nil {
				return err
			}
			if cfg.Nproc > 1 {
				return runParallelBench(cmd, cfg, asJSON)
			}
			rep, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return writeBench(cmd.OutOrStdout(), rep, asJSON)
		},
	}
	f := cmd.Flags()
	f.String("model", "micro", "model: a preset name (robarch arch list shows them) or a spec file (.yaml or .json)")
	f.String("workload", "train", "comma-separated workloads: train, fgsm-rs, pgd10, apgd-ce, infer, loader, or all")
	f.Int("batch", recipe.DefaultBatchSize, "batch size")
	f.Int("steps", 20, "timed steps per workload")
	f.Int("warmup", bench.DefaultWarmup, "untimed warm-up steps per workload (0 = none)")
	f.Int("rss-steps", 1000, "steps after warm-up over which RSS growth is measured (see above; 0 = the timed steps)")
	f.Int("block", 1, "with --peer: steps each side runs in a row before the other's turn (1 = alternate step by step)")
	f.Int("profile", 0, "after the timed steps, this many more per workload under libtorch's operator profiler, on both sides; prints the operators whose time differs most (0 = none)")
	f.String("eps", recipe.FormatEps(recipe.DefaultEps), "attack radius (L∞): a fraction (0.1), a ratio (8/255) or pixel levels (8px)")
	f.Float64("lr", bench.DefaultLR, "learning rate of the training steps")
	f.Int64("seed", 0, "seed of weights, data and attacks")
	f.Bool("peer", false, "run the same workloads in PyTorch eager and report the ratio")
	f.String("python", bench.SystemPython, "Python interpreter with torch for --peer")
	f.Bool("no-fold", false, "run pgd10, apgd-ce and infer without folding batch norms into convolutions")
	f.Bool("peer-fold", false, "with --peer: fold the peer's batch norms into its convolutions for pgd10, apgd-ce and infer, as robarch does")
	f.String("peer-malloc", string(bench.PeerMallocRobarch), "with --peer: the peer's allocator, robarch (robarch's malloc settings) or default (glibc's, as a PyTorch script runs)")
	f.String("peer-memory-format", string(model.Contiguous),
		"the peer's layout: contiguous (PyTorch's default) or channels-last (like robarch's on the CPU)")
	f.String("device", "cpu", "device of both sides: cpu, cuda or cuda:N (CUDA: unmeasured so far, each timed step ends with a synchronisation)")
	f.String("precision", "fp32", "robarch's forward-pass precision: fp32 or bf16 (autocast, as train --precision), or auto")
	f.String("peer-precision", "fp32", "the peer's: fp32 or bf16 (torch.autocast(\"cpu\", dtype=torch.bfloat16))")
	f.Bool("json", false, "print one JSON object per workload (JSON Lines) instead of a table")
	f.String("dataset", "", "with --workload loader: imagefolder:DIR, whole epochs of that folder")
	f.String("transform", "train,eval", "with --dataset: comma-separated transforms, train (random resized crop + flip) and eval (centre crop)")
	f.Int("epochs", 3, "with --dataset: epochs per transform and side")
	f.Int("workers", 2, "with --dataset: robarch's decoding goroutines and the peer's DataLoader workers")
	f.Int("prefetch", 0, "with --dataset: batches in flight in robarch's loader (0 = 2×workers)")
	f.Int("image-size", 224, "with --dataset: side of the output images")
	f.String("decoder", "auto", "with --dataset: JPEG decoder, auto (libjpeg-turbo when built with cgo), turbo or go")
	f.Int("nproc", 1, "data-parallel bench: this many local processes (Gloo on 127.0.0.1) against one process with all the threads; workloads train, allreduce")
	cmd.AddCommand(newBenchWorkerCmd())
	return cmd
}

// benchLong is bench's help.
const benchLong = `Measure robarch's hot paths on one network: images/s (median and spread over
--steps timed steps after --warmup), achieved GFLOP/s and its fraction of the
machine's matrix-multiply ceiling through libtorch, peak RSS and RSS growth.

Workloads (one step is one batch):
  train    a standard training step (forward, cross-entropy, backward, SGD)
  fgsm-rs  a Fast-AT step: one attack gradient from a random start + a training step
  pgd10    PGD-10 (L∞, random start) on a batch, model in evaluation mode
  apgd-ce  APGD-CE with 100 iterations on a batch
  infer    a forward pass without autograd
  loader   the data loader alone (synthetic images, crop+flip, to tensors);
           with --dataset imagefolder:DIR, whole epochs of an image folder
           (see below)

GFLOP/s count 2×MACs per forward pass and forward-pass equivalents per image:
train 3, fgsm-rs 5, pgd10 20, apgd-ce 203, infer 1 (a backward pass for the
weights costs 2 forward passes, one for the input gradient only 1).

With --peer, PyTorch eager (Debian's python3-torch, the same libtorch) builds
the same network from the spec, checks that its parameter count equals
robarch's, and runs the same workloads with the same batch size and thread
count, one step of each side in turn (--block K: K steps each); ratio is
robarch's median images/s over PyTorch's (above 1: robarch is faster), and
"paired" the median of the step-by-step ratios with its distribution-free
95% interval (6 steps or more): pairing cancels the machine's drift, so
judge a speed target by that interval. --profile N
then runs N more steps per workload under libtorch's operator profiler on
both sides and lists the operators whose time differs most; the call
counts compare exactly, the times only within a side (profiling slows
robarch's steps more than the peer's: its allocations fragment the heap
around the profiler's, so a step that allocates much, like fgsm-rs, also
counts page faults).

robarch runs as its commands do: weights in --memory-format (auto:
channels-last on the CPU for nets whose convolutions have channels in
multiples of 8 and no group norms) and, for pgd10,
apgd-ce and infer, batch norms folded into the convolutions (--no-fold
turns that off). The peer runs NCHW weights and batch norms as layers, as
a PyTorch script does unless it asks otherwise; --peer-memory-format
channels-last and --peer-fold (its batch norms folded with PyTorch's own
torch.nn.utils.fusion) compare like with like. --precision bf16 runs robarch's forward passes under bf16
autocast (perturbations, losses and weights stay fp32); --peer-precision
bf16 does the same in the peer with torch.autocast. The peer starts with
robarch's malloc settings (--peer-malloc robarch); --peer-malloc default
starts it on glibc's defaults, as a PyTorch script runs, which on this
kind of machine is much slower (docs/precision.md).

RSS growth is measured over --rss-steps steps after warm-up for the train
workload and over the timed steps for the others; giving --rss-steps
explicitly applies it to every workload.

--workload loader --dataset imagefolder:DIR times whole epochs of a JPEG
folder (DIR/train and DIR/val, or class folders directly) through robarch's
loader: libjpeg-turbo decode with DCT scaling, the crop resampled once,
byte batches turned into ImageNet-normalised float tensors by libtorch.
--transform train is RandomResizedCrop + horizontal flip, eval resize to
size/0.875 + centre crop. With --peer, torchvision's ImageFolder (PIL) and
DataLoader run the same transforms with as many worker processes as
robarch has --workers, epochs alternating between the two. robarch data
fixtures writes a folder to try it on.

--nproc N (2 or more) is a data-parallel bench: robarch's training step on N
processes × --threads threads (default cores ÷ N), --batch examples each,
gradients summed over Gloo on 127.0.0.1 (the ranks started as
--nproc-per-node starts them), against one process with all the threads on
the same global batch (N × --batch); with --peer, PyTorch's
DistributedDataParallel under Debian's torchrun and one PyTorch process do
the same. Workloads: train, and allreduce (the gradient exchange alone,
ResNet-50's 25.6M floats in 160 tensors). One step of each configuration
in turn; it reports each one's step time, the time inside the gradient
allreduce and its share of the step, robarch's batch-norm broadcast, the
paired ratio of robarch's data-parallel step over PyTorch DDP's, and the
scaling efficiency (N processes' throughput over one process's).`

const benchExample = `  robarch bench --model micro --workload train,fgsm-rs,pgd10,infer --batch 128 --steps 20 --peer
  robarch bench --model resnet18-cifar --workload fgsm-rs,pgd10 --batch 128 --steps 5 --rss-steps 0 --peer --json
  robarch bench --model micro --workload train --batch 128 --steps 20 --rss-steps 1000
  robarch bench --model micro --workload train,pgd10 --peer --peer-memory-format channels-last --no-fold
  robarch bench --model micro --workload pgd10,infer --peer --peer-memory-format channels-last --peer-fold
  robarch bench --model micro --workload train,fgsm-rs,pgd10,infer --precision bf16 --peer --peer-precision bf16 --peer-memory-format channels-last
  robarch bench --model micro --workload fgsm-rs --precision bf16 --peer --peer-precision bf16 --peer-memory-format channels-last --profile 10
  robarch bench --workload loader --dataset imagefolder:fixtures --workers 2 --epochs 3 --peer
  robarch bench --model resnet18-cifar --workload train,allreduce --nproc 2 --batch 64 --steps 10 --peer --peer-memory-format channels-last`

// newBenchWorkerCmd is the hidden command a data-parallel bench starts
// its robarch processes with (bench.ServeWorker).
func newBenchWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use: "worker", Hidden: true, Args: cobra.NoArgs,
		Short: "A process of a data-parallel bench (started by robarch bench --nproc)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !bench.IsWorker() {
				return fmt.Errorf("robarch bench worker is started by robarch bench --nproc, not by hand")
			}
			return bench.ServeWorker(cmd.Context())
		},
	}
}

// runParallelBench is bench --nproc N.
func runParallelBench(cmd *cobra.Command, cfg bench.Config, asJSON bool) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--nproc: find this program: %w", err)
	}
	cfg.Worker = []string{exe, "bench", "worker"}
	rep, err := bench.RunParallel(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return bench.WriteParallelJSON(cmd.OutOrStdout(), rep)
	}
	return bench.WriteParallelTable(cmd.OutOrStdout(), rep)
}

// runFolderBench is bench --workload loader --dataset imagefolder:DIR.
func runFolderBench(cmd *cobra.Command, v *viper.Viper) error {
	dir, err := prepare.SourceDir(v.GetString("dataset"))
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	if w := strings.TrimSpace(v.GetString("workload")); w != string(bench.Loader) {
		return fmt.Errorf("--dataset applies to --workload loader only, not %q", w)
	}
	dec, err := data.ParseDecoder(v.GetString("decoder"))
	if err != nil {
		return fmt.Errorf("--decoder: %w", err)
	}
	transforms := strings.FieldsFunc(v.GetString("transform"), func(r rune) bool { return r == ',' || r == ' ' })
	cfg := bench.FolderConfig{
		Dir: dir, Transforms: transforms, Size: v.GetInt("image-size"), Batch: v.GetInt("batch"),
		Workers: v.GetInt("workers"), Prefetch: v.GetInt("prefetch"), Epochs: v.GetInt("epochs"),
		Threads: v.GetInt("threads"), Seed: v.GetInt64("seed"), Decoder: dec,
		Peer: v.GetBool("peer"), Python: v.GetString("python"), PeerMalloc: bench.PeerMalloc(v.GetString("peer-malloc")),
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	rep, err := bench.RunFolder(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	if v.GetBool("json") {
		return bench.WriteFolderJSON(cmd.OutOrStdout(), rep)
	}
	return bench.WriteFolderTable(cmd.OutOrStdout(), rep)
}

// benchConfigFrom reads and checks the flags (and their ROBARCH_* or
// --config equivalents).
func benchConfigFrom(cmd *cobra.Command, v *viper.Viper) (bench.Config, bool, error) {
	name := v.GetString("model")
	spec, err := arch.GetOrLoad(name)
	if err != nil {
		return bench.Config{}, false, fmt.Errorf("--model: %w", err)
	}
	nproc := v.GetInt("nproc")
	parse := bench.ParseWorkloads
	if nproc > 1 {
		parse = bench.ParseParallelWorkloads
	}
	workloads, err := parse(v.GetString("workload"))
	if err != nil {
		return bench.Config{}, false, fmt.Errorf("--workload: %w", err)
	}
	eps, err := recipe.ParseEps(v.GetString("eps"))
	if err != nil {
		return bench.Config{}, false, fmt.Errorf("--eps: %w", err)
	}
	if eps <= 0 {
		return bench.Config{}, false, fmt.Errorf("--eps %q: the attacks need a positive radius", v.GetString("eps"))
	}
	warmup := v.GetInt("warmup")
	if warmup < 0 {
		return bench.Config{}, false, fmt.Errorf("--warmup %d: must not be negative", warmup)
	}
	if warmup == 0 {
		warmup = -1 // bench.Config: 0 means the default
	}
	lr := v.GetFloat64("lr")
	if lr <= 0 {
		return bench.Config{}, false, fmt.Errorf("--lr %v: must be positive", lr)
	}
	format, err := memoryFormat(v)
	if err != nil {
		return bench.Config{}, false, err
	}
	device, err := torchrt.ParseDevice(v.GetString("device"))
	if err != nil {
		return bench.Config{}, false, fmt.Errorf("--device: %w", err)
	}
	prec, err := amp.Parse(v.GetString("precision"))
	if err != nil {
		return bench.Config{}, false, fmt.Errorf("--precision: %w", err)
	}
	if prec, err = amp.ResolveForDevice(prec, device); err != nil {
		return bench.Config{}, false, fmt.Errorf("--precision: %w", err)
	}
	peerPrec, err := amp.Parse(v.GetString("peer-precision"))
	if err != nil {
		return bench.Config{}, false, fmt.Errorf("--peer-precision: %w", err)
	}
	cfg := bench.Config{
		Model: name, Spec: spec, Workloads: workloads,
		Batch: v.GetInt("batch"), Steps: v.GetInt("steps"), Warmup: warmup,
		RSSSteps: v.GetInt("rss-steps"), ProfileSteps: v.GetInt("profile"), Block: v.GetInt("block"), Threads: v.GetInt("threads"),
		Eps: eps, LR: lr, Seed: v.GetInt64("seed"),
		Peer: v.GetBool("peer"), Python: v.GetString("python"),
		MemoryFormat: format, PeerMemoryFormat: model.MemoryFormat(v.GetString("peer-memory-format")),
		NoFold: v.GetBool("no-fold"), PeerFold: v.GetBool("peer-fold"), PeerMalloc: bench.PeerMalloc(v.GetString("peer-malloc")),
		Precision: prec, PeerPrecision: peerPrec, Device: device, Nproc: nproc,
	}
	if cmd.Flags().Changed("rss-steps") {
		cfg.RSSWorkloads = workloads
	}
	if nproc > 1 { // RunParallel checks the rest
		return cfg, v.GetBool("json"), nil
	}
	if nproc < 1 {
		return bench.Config{}, false, fmt.Errorf("--nproc %d: must be at least 1", nproc)
	}
	if err := cfg.Validate(); err != nil {
		return bench.Config{}, false, err
	}
	return cfg, v.GetBool("json"), nil
}

func writeBench(w io.Writer, rep *bench.Report, asJSON bool) error {
	if asJSON {
		return bench.WriteJSON(w, rep)
	}
	return bench.WriteTable(w, rep)
}
