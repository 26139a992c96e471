package bench

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/internal/torchrt"
)

// Benchmarks of the hot paths on the micro preset with batches of 128 and
// one libtorch thread per core. CI only compiles them (go vet); run them
// with `make bench` or
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/
//
// One op is one step of the workload; images/s is reported. The loader's
// own benchmarks are in package data.
//
// Each locks its goroutine to its OS thread and never unlocks, so the
// thread ends with the benchmark and libgomp frees the thread pool it
// started for it. Pools otherwise pile up, one per thread that ran torch
// work, and once libgomp manages more threads than there are cores every
// barrier sleeps instead of spinning (micro's SGD step measured 1.67 ms
// after another benchmark in the same process, 0.35-0.40 ms alone).

func benchmarkWorkload(b *testing.B, w Workload) {
	runtime.LockOSThread() // never unlocked: see above
	old := torchrt.Threads()
	torchrt.SetThreads(0)
	defer torchrt.SetThreads(old)
	spec, err := arch.Get("micro")
	require.NoError(b, err)
	r, err := newRunner(w, runnerConfig{spec: spec.WithDefaults(), batch: 128, eps: DefaultEps, lr: DefaultLR, seed: 1})
	require.NoError(b, err)
	defer r.close()
	_, err = r.step() // warm-up: allocator, oneDNN kernels
	require.NoError(b, err)
	images := 0
	for b.Loop() {
		n, err := r.step()
		if err != nil {
			b.Fatal(err)
		}
		images += n
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkTrainStep is train's own standard training step.
func BenchmarkTrainStep(b *testing.B) { benchmarkWorkload(b, Train) }

// BenchmarkFGSMRSStep is train's own Fast-AT step.
func BenchmarkFGSMRSStep(b *testing.B) { benchmarkWorkload(b, FGSMRS) }

// BenchmarkPGD10 is package attack's PGD-10 on a batch.
func BenchmarkPGD10(b *testing.B) { benchmarkWorkload(b, PGD10) }

// BenchmarkInfer is an evaluation-mode forward pass without autograd.
func BenchmarkInfer(b *testing.B) { benchmarkWorkload(b, Infer) }

// BenchmarkLoader is the data loader with augmentation and conversion to
// tensors, for comparison with the steps above (it should be at least ten
// times faster than a training step).
func BenchmarkLoader(b *testing.B) { benchmarkWorkload(b, Loader) }
