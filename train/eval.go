package train

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
)

// EvalConfig says how Evaluate measures robustness.
type EvalConfig struct {
	// Eps is the L∞ radius of the PGD attack; 0 skips the attack (PGD
	// accuracy is then the clean accuracy, which it equals at radius 0).
	Eps float64
	// Steps of PGD (default 20) and their size (default 2.5·Eps/Steps).
	Steps    int
	StepSize float64
	// BatchSize of evaluation (default 256).
	BatchSize int
	// Seed seeds libtorch's generator for PGD's random start, so an
	// evaluation gives the same number every time.
	Seed int64
	// Workers of the loader (0 = its default).
	Workers int
	// Shard splits the evaluation across processes (nil: this one does
	// all of it); see attack.Shard.
	Shard *attack.Shard
	// Log receives the attack's warnings; nil means slog.Default().
	Log *slog.Logger
}

// EvalResult is clean and PGD accuracy on N examples (fractions in [0,1]).
type EvalResult struct {
	N        int     `json:"n"`
	CleanAcc float64 `json:"clean_acc"`
	PGDAcc   float64 `json:"pgd_acc"`
	Eps      float64 `json:"eps"`
	Steps    int     `json:"steps"`
	Seconds  float64 `json:"seconds"`
}

// EvalModuler is a network that has a faster module for evaluation mode
// (*model.Net: batch norms folded into convolutions); Evaluate uses it.
type EvalModuler interface {
	EvalModule() (ts.ModuleT, func(), error)
}

// EvalModule is net's EvalModule when it has one (made from its current
// weights: call it after the last update), else net; release frees it.
func EvalModule(net ts.ModuleT) (m ts.ModuleT, release func(), err error) {
	em, ok := net.(EvalModuler)
	if !ok {
		return net, func() {}, nil
	}
	if m, release, err = em.EvalModule(); err != nil {
		return nil, nil, fmt.Errorf("evaluation module: %w", err)
	}
	return m, release, nil
}

// Evaluate returns the clean accuracy of net (in evaluation mode) on src
// and its accuracy under an L∞ PGD attack with a random start: package
// attack's PGD through attack.Evaluate, the one path every reported
// robust accuracy takes (so the numbers equal `robarch eval --attacks
// pgdK` on the same points). With cfg.Shard this process evaluates only
// its share of the batches and the counts are summed across processes.
// It locks the calling goroutine to its OS thread while it runs.
func Evaluate(ctx context.Context, net ts.ModuleT, src data.Source, device gotch.Device, cfg EvalConfig) (EvalResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	net, release, err := EvalModule(net)
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	defer release()
	if cfg.Steps == 0 {
		cfg.Steps = 20
	}
	if cfg.StepSize == 0 {
		cfg.StepSize = 2.5 * cfg.Eps / float64(cfg.Steps)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 256
	}
	res := EvalResult{N: src.Len(), Eps: cfg.Eps, Steps: cfg.Steps}
	if cfg.Eps < 0 || cfg.Steps < 0 || cfg.StepSize < 0 || cfg.BatchSize < 0 {
		return res, fmt.Errorf("evaluate: eps %v, steps %d, step size %v, batch size %d: none may be negative", cfg.Eps, cfg.Steps, cfg.StepSize, cfg.BatchSize)
	}
	if src.Len() == 0 {
		return res, fmt.Errorf("evaluate: no examples")
	}
	if sh := cfg.Shard; sh != nil {
		if src, err = data.ShardBatches(src, cfg.BatchSize, sh.Rank, sh.Size); err != nil {
			return res, fmt.Errorf("evaluate: %w", err)
		}
	}
	loader, err := data.NewLoader(src, data.LoaderConfig{BatchSize: cfg.BatchSize, Workers: cfg.Workers})
	if err != nil {
		return res, fmt.Errorf("evaluate: %w", err)
	}
	var attacks []attack.Attack
	if cfg.Eps > 0 { // at radius 0 the PGD accuracy is the clean one
		attacks = []attack.Attack{attack.PGD{Norm: attack.Linf, Eps: cfg.Eps, Steps: cfg.Steps, StepSize: cfg.StepSize, RandomStart: true, Seed: cfg.Seed}}
	}
	start := time.Now()
	batches := torchbatch.Stream(ctx, loader, device, attack.NewBatch)
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	// Per-batch lines would flood a training log: only warnings pass.
	quiet := slog.New(minLevel{Handler: log.Handler(), min: slog.LevelWarn})
	rep, err := attack.Evaluate(ctx, attack.FromModuleT(net), batches, attacks, attack.EvalOptions{Log: quiet, SkipChecks: true, Shard: cfg.Shard})
	if err != nil {
		return res, fmt.Errorf("evaluate: %w", err)
	}
	res.N, res.CleanAcc, res.PGDAcc = rep.N, rep.CleanAcc, rep.RobustAcc
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// minLevel is a handler that drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}
