package sweeprun

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"

	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/attackname"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/train"
)

// ModelBuilder builds a spec's network, freshly initialised from libtorch's
// global generator, on a device.
type ModelBuilder func(spec arch.Spec, device gotch.Device) (train.Model, error)

// BuildModel is the default ModelBuilder: arch/model on a fresh VarStore,
// in the memory format model.AutoFormat picks for the net and device.
func BuildModel(spec arch.Spec, device gotch.Device) (train.Model, error) {
	return BuildModelIn(model.AutoFormat)(spec, device)
}

// BuildModelIn is BuildModel with the network's weights in format f.
func BuildModelIn(f model.MemoryFormat) ModelBuilder {
	return func(spec arch.Spec, device gotch.Device) (train.Model, error) {
		o, err := model.Open(model.Ref{Spec: &spec}, model.OpenOptions{Device: device, Format: f})
		if err != nil {
			return train.Model{}, err
		}
		return train.Model{Net: o.Net, Vars: o.Vars}, nil
	}
}

// NewExecutor wires the real trial pieces: arch/model builds in memory
// format f, train trains, and attack evaluates what the sweep asks beyond
// PGD.
func NewExecutor(f model.MemoryFormat) *Executor { return &Executor{Build: BuildModelIn(f)} }

// RobustEvaluator measures extra attacks (AutoAttack, ...) on a trained
// model; it returns metric name → accuracy. nil skips them.
type RobustEvaluator func(ctx context.Context, m train.Model, test data.Source, attacks []string, eps float64, seed int64) (map[string]float64, error)

// Executor runs real trials: build the variant, train it with the sweep's
// recipe (resuming from the trial folder), evaluate it.
type Executor struct {
	Build    ModelBuilder    // default BuildModel
	Evaluate RobustEvaluator // default EvaluateAttacks
	Log      *slog.Logger
	// OnStep, if set, sees every training step of the trial (a progress
	// bar); LogEvery is train.Options.LogEvery (-1: no step lines).
	OnStep   func(results.Trial, train.Progress)
	LogEvery int

	// Group, when set, makes this process one rank of a data-parallel
	// trial (a sweep's nproc_per_trial): training and every evaluation are
	// split across the group; each rank returns the same metrics.
	Group *dist.Group

	mu   sync.Mutex
	data map[sweep.DatasetConfig]*data.Splits
}

// Run is a TrialFunc.
func (e *Executor) Run(ctx context.Context, t results.Trial, cfg sweep.TrialConfig, dir string) (map[string]float64, error) {
	f := cfg.Sweep
	var spec arch.Spec
	if err := json.Unmarshal(t.Spec, &spec); err != nil {
		return nil, fmt.Errorf("trial spec: %w", err)
	}
	device, err := torchrt.ParseDevice(f.Device)
	if err != nil {
		return nil, err
	}
	splits, err := e.splits(f.Dataset)
	if err != nil {
		return nil, err
	}
	// A variant's counts were planned against the budget: it must match
	// the data as it is (arch.ForData without fitting).
	if _, _, err := arch.ForData(spec, splits.Shape(), false); err != nil {
		return nil, fmt.Errorf("variant %s: %w", t.Variant, err)
	}
	recipe, extra, err := f.TrialRecipe(t.Seed)
	if err != nil {
		return nil, err
	}
	// The final evaluation's PGD (TrialRecipe's final steps).
	finalPGD := attackname.PGDSteps(recipe.FinalSteps)
	if recipe.Precision, err = TrainPrecision(f); err != nil {
		return nil, err
	}
	// The initial weights come from the trial's seed; a resumed run
	// overwrites them with its checkpoint.
	torchrt.Seed(t.Seed)
	build := e.Build
	if build == nil {
		build = BuildModel
	}
	m, err := build(spec, device)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", t.Variant, err)
	}
	log := e.Log
	if log == nil {
		log = slog.Default()
	}
	opts := train.Options{
		OutDir: dir, Resume: true, Logger: log.With("trial", t.Key()), LogEvery: e.LogEvery, Group: e.Group,
		Meta: map[string]any{"sweep": t.Sweep, "variant": t.Variant, "factor": t.Factor, "level": t.Level, "seed": t.Seed, "spec": spec},
	}
	if e.OnStep != nil {
		opts.OnStep = func(p train.Progress) { e.OnStep(t, p) }
	}
	res, err := train.Run(ctx, m, train.Data{Train: splits.Train, Test: splits.Test}, recipe, opts)
	if err != nil {
		return nil, err
	}
	metrics := map[string]float64{
		results.CleanAcc:     res.CleanAcc,
		results.PGDAcc:       res.PGDAcc,
		finalPGD.MetricKey(): res.PGDAcc,
		results.EvalExamples: float64(res.EvalExamples),
		"epoch_chosen":       float64(res.Epoch),
		"train_images_per_s": res.ImagesPerSec,
		"train_seconds":      res.TrainSeconds,
		"eval_seconds":       res.EvalSeconds,
		"peak_rss_bytes":     float64(res.PeakRSSBytes),
	}
	if res.CatastrophicOverfitting {
		metrics["catastrophic_overfitting"] = 1
	}
	evaluate := e.Evaluate
	if evaluate == nil {
		evaluate = EvaluateAttacksSharded(train.ShardFor(e.Group))
	}
	if f.Checks(t.Seed) {
		more, err := e.check(ctx, evaluate, m, splits.Test, f, finalPGD, t.Seed)
		if err != nil {
			return nil, err
		}
		maps.Copy(metrics, more)
	}
	if len(extra) > 0 {
		test, err := data.SelectStratified(splits.Test, f.Eval.Size, 0)
		if err != nil {
			return nil, err
		}
		more, err := evaluate(ctx, m, test, extra, f.Eval.Eps, t.Seed)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", strings.Join(extra, ","), err)
		}
		for k, v := range more {
			metrics[k] = v
		}
	}
	return metrics, nil
}

func (e *Executor) check(ctx context.Context, evaluate RobustEvaluator, m train.Model, test data.Source, f *sweep.File, finalPGD attackname.Name, seed int64) (map[string]float64, error) {
	sub, err := data.SelectStratified(test, f.Eval.Check.Size, 0)
	if err != nil {
		return nil, fmt.Errorf("eval.check: %w", err)
	}
	pgd, err := evaluate(ctx, m, sub, []string{finalPGD.String()}, f.Eval.Eps, seed)
	if err != nil {
		return nil, fmt.Errorf("eval.check %s: %w", finalPGD, err)
	}
	strong, err := evaluate(ctx, m, sub, f.Eval.Check.Attacks, f.Eval.Eps, seed)
	if err != nil {
		return nil, fmt.Errorf("eval.check %s: %w", strings.Join(f.Eval.Check.Attacks, ","), err)
	}
	// The sweep's PGD and the check's attacks on the same examples, so that
	// a variant's PGD gain can be compared with its gain under the stronger
	// attacks.
	return map[string]float64{results.CheckPGDAcc: pgd["robust_acc"], results.CheckAAAcc: strong["robust_acc"],
		results.CheckExamples: float64(sub.Len())}, nil
}

func (e *Executor) splits(c sweep.DatasetConfig) (*data.Splits, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.data[c]; ok {
		return s, nil
	}
	// Subsets use seed 0 so every variant and seed sees the same examples.
	s, err := data.Open(c.Name, data.Options{Dir: c.Dir, TrainSize: c.TrainSize, TestSize: c.TestSize})
	if err != nil {
		return nil, err
	}
	if e.data == nil {
		e.data = map[sweep.DatasetConfig]*data.Splits{}
	}
	e.data[c] = s
	return s, nil
}
