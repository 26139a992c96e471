package train

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/torchrt"
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
// and its accuracy under an L∞ PGD attack with a random start. It locks
// the calling goroutine to its OS thread while it runs.
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
	loader, err := data.NewLoader(src, data.LoaderConfig{BatchSize: cfg.BatchSize, Workers: cfg.Workers})
	if err != nil {
		return res, fmt.Errorf("evaluate: %w", err)
	}
	start := time.Now()
	torchrt.Seed(cfg.Seed)
	attack := linf{eps: cfg.Eps, step: cfg.StepSize, steps: cfg.Steps, randomStart: true}
	var clean, robust int64
	for b, err := range loader.Batches(ctx, 0) {
		if err != nil {
			return res, fmt.Errorf("evaluate: %w", err)
		}
		c, r, err := evalBatch(net, b, device, attack)
		if err != nil {
			return res, fmt.Errorf("evaluate batch %d: %w", b.Index, err)
		}
		clean += c
		robust += r
	}
	res.CleanAcc = float64(clean) / float64(res.N)
	res.PGDAcc = float64(robust) / float64(res.N)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// evalBatch counts the correct clean and adversarial predictions of one
// batch; with eps 0 the adversarial count is the clean one.
func evalBatch(net ts.ModuleT, b *data.Batch, device gotch.Device, a linf) (clean, robust int64, err error) {
	x, y, err := torchbatch.Tensors(b, device)
	if err != nil {
		return 0, 0, err
	}
	defer drop(x, y)
	clean, err = countOn(net, x, y)
	if err != nil || a.eps == 0 {
		return clean, clean, err
	}
	adv, err := perturbCE(net, x, y, a)
	if err != nil {
		return 0, 0, err
	}
	defer drop(adv)
	robust, err = countOn(net, adv, y)
	return clean, robust, err
}

// countOn counts correct predictions of net in evaluation mode, without
// building a graph.
func countOn(net ts.ModuleT, x, y *ts.Tensor) (n int64, err error) {
	ts.NoGrad(func() {
		logits := net.ForwardT(x, false)
		defer drop(logits)
		n, err = countCorrect(logits, y)
	})
	return n, err
}
