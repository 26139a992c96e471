package bench

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/train"
)

// leakRunnerConfig is batches of 4 through a network with every kind of
// layer the forward pass has (basic and bottleneck blocks, a projection
// shortcut, SE), small enough for a few steps of every workload in a second.
func leakRunnerConfig() runnerConfig {
	spec := arch.Spec{
		Name:    "leak-check",
		Input:   arch.Input{Channels: 1, Height: 8, Width: 8},
		Classes: 3,
		Stem:    arch.Stem{Kind: arch.StemConv, Width: 4, Kernel: 3, Stride: 1},
		Stages: []arch.Stage{
			{Depth: 1, Width: 4, Stride: 1, Block: arch.Basic},
			{Depth: 1, Width: 8, Stride: 2, Block: arch.Bottleneck, BottleneckMultiplier: 0.5},
		},
		Block: arch.Block{SERatio: 0.25},
	}
	return runnerConfig{spec: spec.WithDefaults(), batch: 4, eps: DefaultEps, lr: DefaultLR, seed: 1}
}

// TestStepsDropEveryTensor checks that no workload step leaves tensor
// handles behind. torchbuild removes gotch's per-tensor Go ballast, so the
// garbage collector no longer runs often enough to finalise forgotten
// handles: a step that forgets one leaks its storage until the next
// collection, which on a small Go heap may be many steps away.
func TestStepsDropEveryTensor(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := leakRunnerConfig()
	for _, w := range Workloads() {
		t.Run(string(w), func(t *testing.T) {
			// A subtest is a goroutine of its own: unlocked, its torch work
			// could move between threads, and gotch's ts.NoGrad, which sets
			// the thread-local grad mode off and back on, would then leave
			// one thread with gradients off (the rare "does not require
			// grad" error or crash in backward this test used to show).
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			r, err := newRunner(w, rc)
			require.NoError(t, err)
			defer r.close()
			_, err = r.step() // the first step may create lasting state (momentum buffers)
			require.NoError(t, err)
			left, err := torchrt.TensorsLeftBy(func() error {
				for range 3 {
					if _, err := r.step(); err != nil {
						return err
					}
				}
				return nil
			})
			require.NoError(t, err)
			assert.Zero(t, left, "tensor handles left alive by 3 steps of %s", w)
		})
	}
}

// TestTrainingMethodsDropEveryTensor is the same check for every training
// method's step (the bench workloads cover standard and fgsm-rs only).
func TestTrainingMethodsDropEveryTensor(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := leakRunnerConfig()
	bs, err := batches(rc)
	require.NoError(t, err)
	for _, m := range recipe.Methods() {
		t.Run(string(m), func(t *testing.T) {
			// A subtest is a goroutine of its own: unlocked, its torch work
			// could move between threads, and gotch's ts.NoGrad, which sets
			// the thread-local grad mode off and back on, would then leave
			// one thread with gradients off (the rare "does not require
			// grad" error or crash in backward this test used to show).
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			vs, net, err := netOf(rc)
			require.NoError(t, err)
			defer vs.Destroy()
			st, err := train.NewStepper(train.Model{Net: net, Vars: vs}, recipe.Recipe{Method: m, Eps: rc.eps, Steps: 2, BatchSize: rc.batch, LR: rc.lr, Seed: rc.seed})
			require.NoError(t, err)
			defer st.Close()
			_, _, err = st.Step(bs[0], rc.lr) // momentum buffers appear on the first step
			require.NoError(t, err)
			left, err := torchrt.TensorsLeftBy(func() error {
				for _, b := range bs[1:] {
					if _, _, err := st.Step(b, rc.lr); err != nil {
						return err
					}
				}
				return nil
			})
			require.NoError(t, err)
			assert.Zero(t, left, "tensor handles left alive by %d steps of %s", len(bs)-1, m)
		})
	}
}
