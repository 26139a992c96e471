package train

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
)

// benchmarkSteps measures training steps of one method on batches of 128
// synthetic images, reporting images/s and the process's peak RSS.
func benchmarkSteps(b *testing.B, m Model, c, side int, method recipe.Method, precision ...amp.Precision) {
	src, err := data.SyntheticConfig{Classes: 10, C: c, H: side, W: side, Seed: 1}.Generate(128*4, data.Train)
	require.NoError(b, err)
	r := recipe.Recipe{Method: method, Eps: 0.1, Steps: 10, Epochs: 1, BatchSize: 128, Seed: 1}
	if len(precision) > 0 {
		r.Precision = precision[0]
	}
	r = r.WithDefaults()
	require.NoError(b, r.Validate())
	tr, err := newTrainer(m, Data{Train: src, Test: src}, r, Options{OutDir: b.TempDir(), Logger: quietLogger()})
	require.NoError(b, err)
	defer tr.opt.Close()
	defer releaseVars(tr.vars)
	var batches []*data.Batch
	for batch, err := range tr.loader.Batches(context.Background(), 0) {
		require.NoError(b, err)
		batches = append(batches, batch)
	}
	_, _, err = tr.step(batches[0], 0.01) // warm-up: allocator, oneDNN kernels
	require.NoError(b, err)
	steps := 0
	for b.Loop() {
		if _, _, err := tr.step(batches[steps%len(batches)], 0.01); err != nil {
			b.Fatal(err)
		}
		steps++
	}
	b.ReportMetric(float64(128*steps)/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
}

// BenchmarkTrainStepTiny is the test network on 1×16×16 inputs: the
// training loop's own overhead (attack, loss, SGD) dominates.
func BenchmarkTrainStepTiny(b *testing.B) {
	for _, method := range []recipe.Method{recipe.Standard, recipe.FGSMRS, recipe.PGD, recipe.TRADES} {
		b.Run(string(method), func(b *testing.B) {
			lockThreadB(b)
			benchmarkSteps(b, newModel(1), 1, 16, method)
		})
	}
}

// BenchmarkTrainStepMicro is the micro preset (ResNet-20-like, 0.27M
// parameters, 1×28×28) with batches of 128 on all CPU cores: the training
// throughput and peak RSS the README quotes. One op is one training step.
func BenchmarkTrainStepMicro(b *testing.B) {
	old := torchrt.Threads()
	torchrt.SetThreads(0)
	defer torchrt.SetThreads(old)
	spec, err := arch.Get("micro")
	require.NoError(b, err)
	for _, method := range []recipe.Method{recipe.Standard, recipe.FGSMRS, recipe.PGD} {
		// fp32 keeps the sub-benchmark's old name; bf16 is train --precision bf16.
		for _, p := range []amp.Precision{amp.FP32, amp.BF16} {
			name := string(method)
			if p != amp.FP32 {
				name += "-" + string(p)
			}
			b.Run(name, func(b *testing.B) {
				lockThreadB(b)
				torchrt.Seed(1)
				vs := nn.NewVarStore(gotch.CPU)
				net, err := model.Build(vs, spec)
				require.NoError(b, err)
				require.NoError(b, net.SetMemoryFormat(model.AutoFormat)) // as robarch's commands run it
				benchmarkSteps(b, Model{Net: net, Vars: vs}, 1, 28, method, p)
			})
		}
	}
}

// BenchmarkSGDStepMicro is one optimiser step (momentum 0.9, weight decay
// 5e-4, as the recipe) over the micro preset's parameters, on all CPU
// cores: the part of a training step that is robarch's own code rather
// than the network's forward and backward passes.
func BenchmarkSGDStepMicro(b *testing.B) {
	old := torchrt.Threads()
	torchrt.SetThreads(0)
	defer torchrt.SetThreads(old)
	lockThreadB(b)
	spec, err := arch.Get("micro")
	require.NoError(b, err)
	torchrt.Seed(1)
	vs := nn.NewVarStore(gotch.CPU)
	_, err = model.Build(vs, spec)
	require.NoError(b, err)
	opt, err := NewSGD(vs, SGDConfig{Momentum: 0.9, WeightDecay: 5e-4})
	require.NoError(b, err)
	defer opt.Close()
	b.Cleanup(vs.Destroy)
	for b.Loop() {
		b.StopTimer()
		setGradients(b, opt) // Step clears them
		b.StartTimer()
		if _, err := opt.Step(0.01); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(opt.params)), "tensors")
}

// setGradients gives every parameter the gradient of Σ p: all ones.
func setGradients(b *testing.B, opt *SGD) {
	for _, p := range opt.params {
		s, err := p.t.Sum(p.t.DType(), false)
		require.NoError(b, err)
		require.NoError(b, s.Backward())
		drop(s)
	}
}
