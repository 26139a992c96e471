package evaluation

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/robustbench"
	"github.com/robarch/robarch/train"
)

// Options are what is evaluated besides the Settings, and how.
type Options struct {
	// Model is a preset or spec file; "" where Weights is a robarch
	// checkpoint, which carries its spec. Weights is the checkpoint or
	// state dict.
	Model, Weights string
	DataDir        string
	ImageSize      int // imagefolder and synthetic; 0: the dataset's default
	BatchSize      int
	Workers        int // data loader goroutines; 0: the loader's default
	Device         gotch.Device
	DeviceName     string // as asked, for the log
	Format         model.MemoryFormat
	// Precision of the forward passes (checked by the caller: amp.Check);
	// perturbations and projections stay fp32.
	Precision  amp.Precision
	SkipChecks bool
	// Group, when set, makes this process one rank of an evaluation split
	// across processes by whole batches; every rank returns everyone's
	// counts.
	Group *dist.Group
}

// Result is an evaluation's attack report and what it is of (robarch
// eval --json).
type Result struct {
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

// OffRadius reports a result at a radius other than the checkpoint's own.
func (r Result) OffRadius() bool { return OffRadius(r.Eps, r.TrainedEps) }

// Device is the device an evaluation runs on: name (cpu, cuda, cuda:N),
// except that with several processes "cuda" gives each local process its
// own GPU, cuda:LOCAL_RANK.
func Device(name string, g *dist.Group) (gotch.Device, error) {
	if g != nil && name == "cuda" {
		name = fmt.Sprintf("cuda:%d", g.LocalRank())
	}
	d, err := torchrt.ParseDevice(name)
	if err != nil {
		return d, fmt.Errorf("--device: %w", err)
	}
	return d, nil
}

// Run evaluates a network: clean accuracy, each attack's robust accuracy
// and the worst case over them, under s. The test points are the
// protocol's; with a Group, this process attacks its share of the batches
// and the counts are summed (every attack reseeds per batch, so the
// numbers are one process's).
func Run(ctx context.Context, s Settings, o Options) (Result, error) {
	res := Result{Weights: o.Weights, Dataset: s.Dataset, Eps: s.Eps, Norm: string(s.Norm), Seed: s.Seed,
		Precision: string(o.Precision), From: s.From, TrainedEps: s.TrainedEps}
	if _, err := os.Stat(o.Weights); err != nil {
		return res, fmt.Errorf("--weights: %w", err)
	}
	splits, err := OpenData(s, o.DataDir, o.ImageSize)
	if err != nil {
		return res, err
	}
	attacks := make([]attack.Attack, len(s.Attacks))
	for i, name := range s.Attacks {
		if attacks[i], err = attack.ByName(name, s.Norm, s.Eps, s.Seed); err != nil {
			return res, fmt.Errorf("--attacks: %w", err)
		}
	}
	shard := train.ShardFor(o.Group)
	points := splits.Test
	if shard != nil {
		if points, err = data.ShardBatches(points, o.BatchSize, shard.Rank, shard.Size); err != nil {
			return res, err
		}
	}
	loader, err := data.NewLoader(points, data.LoaderConfig{BatchSize: o.BatchSize, Workers: o.Workers})
	if err != nil {
		return res, err
	}
	if res.OffRadius() {
		slog.Warn("evaluating at a radius other than the one the checkpoint was trained and reported at", "eps", s.Eps, "trained_eps", s.TrainedEps)
	}
	w := torchrt.NewWorker()
	defer w.Close()
	err = w.Do(func() error {
		batches := torchbatch.Stream(ctx, loader, o.Device, attack.NewBatch)
		return evaluate(ctx, &res, s, o, splits, batches, attacks, shard)
	})
	return res, err
}

// OpenData opens the test points of s's protocol: RobustBench's, or a
// stratified subset of s.Size (seed 0: every evaluation of a dataset sees
// the same examples).
func OpenData(s Settings, dir string, imageSize int) (*data.Splits, error) {
	if s.Protocol == RobustBench {
		splits, err := robustbench.Open(s.Dataset, dir, s.Size)
		if err != nil {
			return nil, fmt.Errorf("--protocol robustbench: %w", err)
		}
		return splits, nil
	}
	return data.Open(s.Dataset, data.Options{Dir: dir, TestSize: s.Size, ImageSize: imageSize})
}

// evaluate opens the net, folds its batch norms into the convolutions
// (the same function with fewer ops), wraps it in o's precision and
// attacks it; it runs on a torch worker.
func evaluate(ctx context.Context, res *Result, s Settings, o Options, splits *data.Splits, batches iter.Seq2[attack.Batch, error],
	attacks []attack.Attack, shard *attack.Shard) error {
	opened, err := openNet(o, splits)
	if err != nil {
		return err
	}
	defer opened.Vars.Destroy()
	net, name := opened.Net, opened.Name
	res.Model, res.Params = name, net.NumParams()
	folded, err := net.Fold()
	if err != nil {
		return err
	}
	defer folded.Close()
	slog.Info("evaluating", "model", name, "params", net.NumParams(), "dataset", s.Dataset, "examples", splits.Test.Len(),
		"attacks", strings.Join(s.Attacks, ","), "eps", s.Eps, "norm", s.Norm, "device", o.DeviceName, "threads", torchrt.Threads(),
		"memory_format", net.MemoryFormat(), "folded_norms", folded.Norms, "precision", o.Precision)
	m := folded.Forward
	if o.Precision != amp.FP32 {
		slog.Warn("evaluating in low precision: attacks' gradients may be weaker and robust accuracy overstated", "precision", o.Precision)
		low, err := amp.Wrap(folded, o.Device, o.Precision)
		if err != nil {
			return err
		}
		m = attack.FromModuleT(low)
	}
	res.Report, err = attack.Evaluate(ctx, m, batches, attacks, attack.EvalOptions{SkipChecks: o.SkipChecks, Shard: shard})
	return err
}

// openNet opens the network to evaluate through model.Open, naming the
// flags in its errors.
func openNet(o Options, splits *data.Splits) (*model.Opened, error) {
	shape := splits.Shape()
	opened, err := model.Open(model.Ref{Model: o.Model, Weights: o.Weights}, model.OpenOptions{Device: o.Device, Format: o.Format, Data: &shape})
	switch {
	case errors.Is(err, model.ErrNoModel):
		return nil, fmt.Errorf("--model is required: %w", err)
	case err != nil && o.Model != "":
		return nil, fmt.Errorf("--model/--weights: %w", err)
	case err != nil:
		return nil, fmt.Errorf("--weights: %w", err)
	}
	return opened, nil
}

// ParseFormats reads the memory format and precision an evaluation runs
// in. auto is a training choice: an evaluation stays fp32 unless asked.
func ParseFormats(format, precision string) (model.MemoryFormat, amp.Precision, error) {
	mf, err := model.ParseMemoryFormat(format)
	if err != nil {
		return mf, "", fmt.Errorf("--memory-format: %w", err)
	}
	p, err := amp.Parse(precision)
	if err != nil {
		return mf, p, fmt.Errorf("--precision: %w", err)
	}
	if p == amp.Auto {
		p = amp.FP32
	}
	return mf, p, nil
}
