package bench

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/archview"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
)

// Defaults of Config.
const (
	DefaultWarmup = 3
	DefaultEps    = recipe.DefaultEps
	DefaultLR     = 0.01
	// CeilingSize is the matrix size of the matmul ceiling: large enough
	// for BLAS to reach its peak, small enough to take well under a second.
	CeilingSize = 1024
)

// Config is one bench invocation.
type Config struct {
	// Model names the network in the report (a preset name or a file).
	Model string
	Spec  arch.Spec
	// Workloads to measure, in order.
	Workloads []Workload
	// Batch is the batch size; Steps the number of timed steps (each one
	// batch) after Warmup untimed ones (0 means DefaultWarmup; use a
	// negative value for none).
	Batch, Steps, Warmup int
	// RSSSteps is the number of steps after warm-up over which the RSS
	// growth of the workloads in RSSWorkloads is measured (the timed steps
	// are the first of them; fewer than Steps means Steps). Other
	// workloads measure it over their timed steps. RSSWorkloads nil means
	// the train workload only.
	RSSSteps     int
	RSSWorkloads []Workload
	// ProfileSteps, when positive, runs that many more steps of every
	// workload after the timed ones under libtorch's operator profiler, on
	// robarch's side and the peer's (Result.Profile).
	ProfileSteps int
	// Block is how many steps each side runs in a row before the other's
	// turn (0 or 1: they alternate step by step).
	Block int
	// Threads is libtorch's intra-op thread count for robarch and the peer
	// (0: one per CPU core).
	Threads int
	// Eps is the attacks' L∞ radius (0: 8/255); LR the training steps'
	// learning rate (0: DefaultLR).
	Eps, LR float64
	Seed    int64
	// Peer runs the same workloads in PyTorch eager with Python (default
	// SystemPython), interleaved step by step with robarch's.
	Peer   bool
	Python string
	// MemoryFormat is robarch's network layout (model.SetMemoryFormat; ""
	// means auto, what train and sweep use). PeerMemoryFormat is the
	// peer's: "" means contiguous, PyTorch's default and what a PyTorch
	// script gets unless it asks; channels-last compares like with like.
	MemoryFormat, PeerMemoryFormat model.MemoryFormat
	// NoFold runs pgd10, apgd-ce and infer on the network as built rather
	// than with its batch norms folded into the convolutions
	// (model.Net.Fold), which is how robarch's evaluations run.
	NoFold bool
	// PeerFold folds the peer's batch norms into its convolutions for
	// pgd10, apgd-ce and infer (specnet's fold_batch_norms, with PyTorch's
	// own fusion helper), so that evaluation compares like with like
	// with robarch's folded net; off, the peer runs them as a PyTorch
	// script does, batch norms as layers. Needs Peer.
	PeerFold bool
	// PeerMalloc is the peer's allocator: PeerMallocRobarch ("" too)
	// starts it with robarch's malloc settings, so that the ratio compares
	// the frameworks rather than two allocator configurations;
	// PeerMallocDefault with glibc's defaults, as a PyTorch script runs.
	PeerMalloc PeerMalloc
	// Precision is robarch's forward-pass precision for every workload
	// (""/fp32, bf16; fp16 on CUDA only), as train --precision runs it;
	// PeerPrecision the peer's: bf16 runs its forward passes under
	// torch.autocast(device, dtype=torch.bfloat16).
	Precision, PeerPrecision amp.Precision
	// Device runs robarch and the peer on a CUDA device instead of the
	// CPU (zero value: the CPU); each timed step then ends with a
	// synchronisation. Unmeasured so far: no GPU machine was at hand.
	Device gotch.Device
	// Nproc, 2 or more, makes it a data-parallel bench (RunParallel):
	// Nproc processes of Threads threads, Batch examples each, started by
	// running Worker (a program and its arguments that calls ServeWorker,
	// such as robarch's hidden `bench worker`). AllreduceFloats and
	// AllreduceTensors size the allreduce workload (0: ResNet-50's 25.6M
	// floats in 160 tensors).
	Nproc            int
	Worker           []string
	AllreduceFloats  int64
	AllreduceTensors int
	Logger           *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	}
	c.Warmup = max(c.Warmup, 0)
	if c.Eps == 0 {
		c.Eps = DefaultEps
	}
	if c.LR == 0 {
		c.LR = DefaultLR
	}
	if c.RSSWorkloads == nil {
		c.RSSWorkloads = []Workload{Train}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Model == "" {
		c.Model = c.Spec.Name
	}
	if c.MemoryFormat == "" {
		c.MemoryFormat = model.AutoFormat
	}
	if c.PeerMemoryFormat == "" {
		c.PeerMemoryFormat = model.Contiguous
	}
	if c.Precision == "" {
		c.Precision = amp.FP32
	}
	if c.Device.Name == "" {
		c.Device = gotch.CPU
	}
	if c.PeerPrecision == "" {
		c.PeerPrecision = amp.FP32
	}
	if c.AllreduceFloats == 0 {
		c.AllreduceFloats = DefaultAllreduceFloats
	}
	if c.AllreduceTensors == 0 {
		c.AllreduceTensors = DefaultAllreduceTensors
	}
	return c
}

// Validate names the first bad field and what it accepts.
func (c Config) Validate() error {
	if len(c.Workloads) == 0 {
		return fmt.Errorf("workloads: name at least one of %s", allowed())
	}
	for _, w := range c.Workloads {
		if !slices.Contains(Workloads(), w) {
			return fmt.Errorf("workload %q: allowed values are %s", w, allowed())
		}
	}
	if c.Batch < 2 {
		return fmt.Errorf("batch %d: must be at least 2 (batch norm in training mode needs two samples)", c.Batch)
	}
	if c.Steps < 1 {
		return fmt.Errorf("steps %d: must be at least 1", c.Steps)
	}
	if c.RSSSteps < 0 {
		return fmt.Errorf("rss steps %d: must not be negative", c.RSSSteps)
	}
	if c.Block < 0 {
		return fmt.Errorf("block %d: must not be negative (0 or 1 = alternate step by step)", c.Block)
	}
	if c.ProfileSteps < 0 {
		return fmt.Errorf("profile steps %d: must not be negative (0 = no profile)", c.ProfileSteps)
	}
	if c.Threads < 0 {
		return fmt.Errorf("threads %d: must not be negative (0 = one per CPU core)", c.Threads)
	}
	if !(c.Eps >= 0 && c.Eps <= 1) {
		return fmt.Errorf("eps %v: must be in [0,1] (0 = 8/255)", c.Eps)
	}
	if !(c.LR >= 0) {
		return fmt.Errorf("lr %v: must not be negative (0 = %v)", c.LR, DefaultLR)
	}
	if _, err := model.ParseMemoryFormat(string(c.MemoryFormat)); err != nil {
		return err
	}
	if c.PeerFold && !c.Peer {
		return fmt.Errorf("peer fold: folds the PyTorch peer's batch norms, so it needs --peer")
	}
	if err := c.PeerMalloc.validate(c.Peer); err != nil {
		return err
	}
	if f := c.PeerMemoryFormat; f != "" && f != model.Contiguous && f != model.ChannelsLast {
		return fmt.Errorf("peer memory format %q: want %s or %s (the peer runs on the CPU)", f, model.Contiguous, model.ChannelsLast)
	}
	for _, p := range []struct {
		name string
		p    amp.Precision
	}{{"precision", c.Precision}, {"peer precision", c.PeerPrecision}} {
		switch p.p {
		case "", amp.FP32, amp.BF16:
		case amp.FP16:
			if !c.Device.IsCuda() {
				return fmt.Errorf("%s fp16: needs a CUDA device (--device cuda); the CPU runs fp32 or bf16", p.name)
			}
		default:
			return fmt.Errorf("%s %q: want fp32, bf16 or (CUDA) fp16; resolve auto first", p.name, p.p)
		}
	}
	return nil
}

// Result is one workload's figures. Rates are images per second; the
// spread is over the timed steps. JSON field names are stable: tracking
// tools read them.
type Result struct {
	Model    string   `json:"model"`
	Workload Workload `json:"workload"`
	Batch    int      `json:"batch"`
	Steps    int      `json:"steps"`
	Warmup   int      `json:"warmup"`
	// Block is how many steps each side ran in a row (with a peer).
	Block   int   `json:"block,omitempty"`
	Threads int   `json:"threads"`
	Params  int64 `json:"params"`
	// MACs per image at the spec's input size; Passes the forward-pass
	// equivalents per image of the workload (see Workload.Passes).
	MACs   int64   `json:"macs"`
	Passes float64 `json:"forward_passes"`
	// MemoryFormat is robarch's weight layout, PeerMemoryFormat the
	// peer's; FoldedBN and PeerFoldedBN say whether robarch and the peer
	// ran this workload with batch norms folded into convolutions
	// (evaluation workloads only).
	MemoryFormat     model.MemoryFormat `json:"memory_format"`
	PeerMemoryFormat model.MemoryFormat `json:"peer_memory_format,omitempty"`
	FoldedBN         bool               `json:"folded_bn"`
	PeerFoldedBN     bool               `json:"peer_folded_bn,omitempty"`
	// Precision and PeerPrecision are the two sides' forward-pass
	// precisions (fp32, bf16).
	Precision     amp.Precision `json:"precision"`
	PeerPrecision amp.Precision `json:"peer_precision,omitempty"`
	// PeerMalloc is the peer's allocator: robarch's settings or glibc's
	// defaults.
	PeerMalloc PeerMalloc `json:"peer_malloc,omitempty"`

	ImagesPerS float64 `json:"images_per_s"` // median
	Spread     Spread  `json:"images_per_s_spread"`
	// GFLOPS is achieved at the median rate: images/s × 2·MACs × Passes.
	GFLOPS float64 `json:"gflops"`
	// CeilingGFLOPS is the matmul ceiling (MatmulGFLOPS); CeilingFraction
	// GFLOPS / CeilingGFLOPS.
	CeilingGFLOPS   float64 `json:"ceiling_gflops"`
	CeilingFraction float64 `json:"ceiling_fraction"`
	// PeakRSSBytes is the process's peak RSS (VmHWM) after the workload:
	// it includes the workloads before it.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// RSSGrowth is (RSS after − RSS before) / RSS before over
	// RSSGrowthSteps steps after warm-up, both read after a garbage
	// collection and after malloc has returned its free memory (settledRSS),
	// so that what grows is memory in use.
	RSSGrowth      float64 `json:"rss_growth"`
	RSSGrowthSteps int     `json:"rss_growth_steps"`
	// CPUSecondsPerStep is the median CPU time (user + system, all
	// threads) of the process per timed step: a figure less sensitive
	// than the rate to other processes on the machine, though spinning
	// OpenMP threads count in it.
	CPUSecondsPerStep float64 `json:"cpu_s_per_step"`

	// The peer's figures, with Config.Peer.
	PeerImagesPerS        float64 `json:"peer_images_per_s,omitempty"`
	PeerSpread            *Spread `json:"peer_images_per_s_spread,omitempty"`
	PeerGFLOPS            float64 `json:"peer_gflops,omitempty"`
	PeerCeilingFraction   float64 `json:"peer_ceiling_fraction,omitempty"`
	PeerPeakRSSBytes      int64   `json:"peer_peak_rss_bytes,omitempty"`
	PeerCPUSecondsPerStep float64 `json:"peer_cpu_s_per_step,omitempty"`
	// Profile is the operator profile of Config.ProfileSteps more steps.
	Profile *Profile `json:"profile,omitempty"`
	// Ratio is ImagesPerS / PeerImagesPerS: above 1, robarch is faster.
	Ratio float64 `json:"ratio,omitempty"`
	// PairedRatio is the median of the step-by-step ratios (robarch's
	// step i over the peer's step i, run next to it) and RatioInterval its
	// distribution-free 95% interval (PairedRatio, the function): the
	// figure to judge a target by, since pairing cancels the machine's
	// drift. No interval with fewer than 6 steps.
	PairedRatio   float64   `json:"paired_ratio,omitempty"`
	RatioInterval *Interval `json:"paired_ratio_interval,omitempty"`
	Torch         string    `json:"peer_torch,omitempty"`
}

// Report is a whole invocation: the machine's ceiling and every
// workload's result.
type Report struct {
	Model   string `json:"model"`
	Params  int64  `json:"params"`
	MACs    int64  `json:"macs"`
	Input   string `json:"input"`
	Batch   int    `json:"batch"`
	Threads int    `json:"threads"`
	// Malloc describes glibc malloc's settings for robarch and the peer
	// (torchrt.TuneAllocator), which change small networks' speed by up to 2×.
	Malloc string `json:"malloc"`
	// MallocArenas is how many malloc arenas the process had after the
	// workloads (torchrt.MallocArenas): more than one means libtorch's
	// memory may have been unmapped and faulted in again every step.
	MallocArenas int `json:"malloc_arenas"`
	// Sysmon is the scheduling of the Go runtime's monitor thread
	// (torchrt.QuietSysmon): at normal priority its wake-ups preempt
	// libtorch's threads.
	Sysmon string `json:"sysmon"`
	// MemoryFormat is robarch's network layout (auto resolved),
	// PeerMemoryFormat the peer's.
	MemoryFormat     model.MemoryFormat `json:"memory_format"`
	PeerMemoryFormat model.MemoryFormat `json:"peer_memory_format,omitempty"`
	// Precision and PeerPrecision are the two sides' forward-pass precisions.
	Precision     amp.Precision `json:"precision"`
	PeerPrecision amp.Precision `json:"peer_precision,omitempty"`
	// Device is where both sides ran: cpu or cuda:N.
	Device string `json:"device"`
	// FoldBN and PeerFoldBN are whether evaluation workloads ran with
	// folded batch norms in robarch and in the peer.
	FoldBN     bool `json:"fold_bn"`
	PeerFoldBN bool `json:"peer_fold_bn,omitempty"`
	// PeerMalloc is the peer's allocator (PeerMallocRobarch or
	// PeerMallocDefault).
	PeerMalloc    PeerMalloc `json:"peer_malloc,omitempty"`
	CeilingGFLOPS float64    `json:"ceiling_gflops"`
	Torch         string     `json:"peer_torch,omitempty"`
	Results       []Result   `json:"results"`
}

// Run measures cfg's workloads. Torch work runs on the calling goroutine,
// locked to its OS thread meanwhile; the peer, if any, runs in its own
// process and is stopped before Run returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	layout, err := arch.Resolve(cfg.Spec)
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", cfg.Model, err)
	}
	spec := layout.Spec
	rt := torchrt.Init(cfg.Threads)
	threads := torchrt.Threads()
	rep := &Report{
		Model: cfg.Model, Params: layout.Total.Params, MACs: layout.Total.MACs,
		Input:     archview.InputString(spec.Input),
		Batch:     cfg.Batch,
		Threads:   threads,
		Malloc:    rt.Malloc,
		Sysmon:    rt.Sysmon,
		FoldBN:    !cfg.NoFold,
		Precision: cfg.Precision,
		Device:    deviceName(cfg.Device),
	}
	err = torchrt.Safely(func() error {
		rep.CeilingGFLOPS, err = MatmulGFLOPS(CeilingSize, 5)
		return err
	})
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("bench", "model", cfg.Model, "params", rep.Params, "macs", rep.MACs, "batch", cfg.Batch,
		"threads", threads, "matmul_gflops", round1(rep.CeilingGFLOPS))

	var p *peer
	if cfg.Peer && slices.ContainsFunc(cfg.Workloads, Workload.HasPeer) {
		if p, err = startPeer(cfg.Python, cfg.PeerMalloc); err != nil {
			return nil, err
		}
		defer p.close()
		if _, err := p.setup(peerSetup{Spec: spec, Params: rep.Params, MACs: rep.MACs, Threads: threads,
			Batch: cfg.Batch, Eps: cfg.Eps, LR: cfg.LR, Seed: cfg.Seed, MemoryFormat: cfg.PeerMemoryFormat,
			Precision: cfg.PeerPrecision, Device: rep.Device, Fold: cfg.PeerFold}); err != nil {
			return nil, err
		}
		rep.Torch, rep.PeerMemoryFormat, rep.PeerPrecision = p.torch, cfg.PeerMemoryFormat, cfg.PeerPrecision
		rep.PeerFoldBN, rep.PeerMalloc = cfg.PeerFold, cmp.Or(cfg.PeerMalloc, PeerMallocRobarch)
	}
	rc := runnerConfig{spec: spec, batch: cfg.Batch, eps: cfg.Eps, lr: cfg.LR, seed: cfg.Seed,
		format: cfg.MemoryFormat, resolved: new(model.MemoryFormat), noFold: cfg.NoFold, precision: cfg.Precision, device: cfg.Device}
	for _, w := range cfg.Workloads {
		var res Result
		err := torchrt.Safely(func() (err error) {
			res, err = measure(ctx, cfg, w, rc, p)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("bench %s %s: %w", cfg.Model, w, err)
		}
		res.Model, res.Params, res.MACs, res.Threads = cfg.Model, rep.Params, rep.MACs, threads
		res.CeilingGFLOPS = rep.CeilingGFLOPS
		if w != Loader { // the loader builds no net
			rep.MemoryFormat = *rc.resolved
			res.MemoryFormat = rep.MemoryFormat
		}
		res.PeerMemoryFormat = rep.PeerMemoryFormat
		if w != Loader {
			res.Precision = rep.Precision
		}
		if p != nil && w.HasPeer() {
			res.PeerPrecision, res.PeerMalloc = rep.PeerPrecision, rep.PeerMalloc
		}
		res.FoldedBN = rep.FoldBN && w.evaluates()
		res.PeerFoldedBN = rep.PeerFoldBN && w.evaluates() && w.HasPeer()
		res.GFLOPS = res.ImagesPerS * 2 * float64(rep.MACs) * res.Passes / 1e9
		if rep.CeilingGFLOPS > 0 {
			res.CeilingFraction = res.GFLOPS / rep.CeilingGFLOPS
		}
		if res.PeerImagesPerS > 0 {
			res.PeerGFLOPS = res.PeerImagesPerS * 2 * float64(rep.MACs) * res.Passes / 1e9
			if rep.CeilingGFLOPS > 0 {
				res.PeerCeilingFraction = res.PeerGFLOPS / rep.CeilingGFLOPS
			}
			res.Ratio = res.ImagesPerS / res.PeerImagesPerS
			res.Torch = rep.Torch
		}
		cfg.Logger.Info("bench done", "workload", w, "images_per_s", round1(res.ImagesPerS),
			"peer_images_per_s", round1(res.PeerImagesPerS), "ratio", round2(res.Ratio), "paired_ratio", round2(res.PairedRatio))
		rep.Results = append(rep.Results, res)
	}
	rep.MallocArenas = torchrt.MallocArenas()
	return rep, nil
}

// measure runs one workload: warm-up, then the timed steps, robarch's and
// the peer's in turn, then the rest of the RSS window.
func measure(ctx context.Context, cfg Config, w Workload, rc runnerConfig, p *peer) (Result, error) {
	res := Result{Workload: w, Batch: cfg.Batch, Steps: cfg.Steps, Warmup: cfg.Warmup, Passes: w.Passes()}
	usePeer := p != nil && w.HasPeer()
	if usePeer {
		res.Block = max(cfg.Block, 1)
	}
	r, err := newRunner(w, rc)
	if err != nil {
		return res, err
	}
	defer r.close()
	for i := range cfg.Warmup {
		if _, err := r.step(); err != nil {
			return res, fmt.Errorf("warm-up step %d: %w", i+1, err)
		}
	}
	if usePeer {
		folded, err := p.prepare(w, cfg.Warmup)
		if err != nil {
			return res, err
		}
		if mine, ok := foldedNorms(r); ok && cfg.PeerFold && folded != mine {
			return res, fmt.Errorf("the PyTorch peer folded %d batch norms, robarch %d: the builders disagree", folded, mine)
		}
	}
	rssBefore, err := settledRSS()
	if err != nil {
		return res, err
	}
	// settledRSS handed malloc's free memory back to the system, so the
	// next step faults it in again: untimed, or robarch's first timed step
	// ran at a third to a half of the others' rate (2026-12-03).
	if cfg.Warmup > 0 {
		if _, err := r.step(); err != nil {
			return res, fmt.Errorf("warm-up step after the RSS reading: %w", err)
		}
	}
	t, err := timedSteps(ctx, cfg, w, r, p, usePeer)
	if err != nil {
		return res, err
	}
	window := cfg.Steps
	if slices.Contains(cfg.RSSWorkloads, w) {
		window = max(cfg.Steps, cfg.RSSSteps)
	}
	for i := cfg.Steps; i < window; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if _, err := r.step(); err != nil {
			return res, fmt.Errorf("RSS step %d: %w", i+1, err)
		}
		if (i+1)%100 == 0 && cfg.Logger.Enabled(ctx, slog.LevelDebug) {
			rss, _ := settledRSS()
			cfg.Logger.Debug("bench rss", "workload", w, "step", i+1, "rss_mib", round1(float64(rss)/(1<<20)))
		}
	}
	rssAfter, err := settledRSS()
	if err != nil {
		return res, err
	}
	if res.PeakRSSBytes, err = PeakRSS(); err != nil {
		return res, err
	}
	res.RSSGrowthSteps = window
	if rssBefore > 0 {
		res.RSSGrowth = float64(rssAfter-rssBefore) / float64(rssBefore)
	}
	// After the memory figures: the profiler's event lists would count in them.
	if cfg.ProfileSteps > 0 {
		peer := p
		if !usePeer {
			peer = nil
		}
		if res.Profile, err = profile(cfg.ProfileSteps, r, peer); err != nil {
			return res, err
		}
	}
	t.summarize(&res)
	if usePeer {
		if _, res.PeerPeakRSSBytes, err = p.memory(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// stepTimes are the timed steps' rates and CPU seconds, robarch's and the
// peer's.
type stepTimes struct {
	rates, peerRates, cpu, peerCPU []float64
}

// timedSteps runs cfg.Steps timed steps of r and, with usePeer, of the
// peer, in blocks of cfg.Block steps each.
func timedSteps(ctx context.Context, cfg Config, w Workload, r runner, p *peer, usePeer bool) (stepTimes, error) {
	var t stepTimes
	// Blocks of cfg.Block steps, robarch's then the peer's: 1 alternates
	// step by step (drift cancels best); longer blocks let each side run
	// several steps in a row, as it would alone.
	for i := 0; i < cfg.Steps; {
		block := min(max(cfg.Block, 1), cfg.Steps-i)
		for k := range block {
			if err := ctx.Err(); err != nil {
				return t, err
			}
			cpu0 := cpuSeconds()
			start := time.Now()
			n, err := r.step()
			if err == nil {
				err = syncDevice(cfg.Device)
			}
			if err != nil {
				return t, fmt.Errorf("step %d: %w", i+k+1, err)
			}
			t.rates = append(t.rates, float64(n)/time.Since(start).Seconds())
			t.cpu = append(t.cpu, cpuSeconds()-cpu0)
			cfg.Logger.Debug("bench step", "workload", w, "step", i+k+1, "images_per_s", round1(t.rates[i+k]))
		}
		for k := 0; usePeer && k < block; k++ {
			pr, err := p.step()
			if err != nil {
				return t, err
			}
			t.peerRates = append(t.peerRates, float64(pr.Images)/pr.Seconds)
			t.peerCPU = append(t.peerCPU, pr.CPUSeconds)
			cfg.Logger.Debug("bench peer step", "workload", w, "step", i+k+1, "images_per_s", round1(t.peerRates[i+k]))
		}
		i += block
	}
	return t, nil
}

// summarize fills res's rates, spreads and paired ratio from t.
func (t stepTimes) summarize(res *Result) {
	res.Spread = Summarize(t.rates)
	res.ImagesPerS = res.Spread.Median
	res.CPUSecondsPerStep = Summarize(t.cpu).Median
	if len(t.peerRates) == 0 {
		return
	}
	s := Summarize(t.peerRates)
	res.PeerSpread = &s
	res.PeerImagesPerS = s.Median
	res.PeerCPUSecondsPerStep = Summarize(t.peerCPU).Median
	res.PairedRatio, res.RatioInterval = pairedRatioAt(t.rates, t.peerRates)
}

// syncDevice waits for a CUDA device's queued kernels, so that a step's
// time is its work, not its launches.
func syncDevice(d gotch.Device) error {
	if !d.IsCuda() {
		return nil
	}
	return ts.CudaSynchronize(d.Value)
}

func deviceName(d gotch.Device) string {
	if d.IsCuda() {
		return fmt.Sprintf("cuda:%d", d.Value)
	}
	return "cpu"
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
