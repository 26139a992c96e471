package bench

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
)

// liveTensors is how many gotch tensor handles exist and are not dropped.
// gotch keeps them in a map guarded by its lock, which is unexported; the
// steps below run on this goroutine only, so reading the map's length
// between steps races with nothing.
func liveTensors() int { return len(ts.ExistingTensors) }

// TestStepsDropEveryTensor checks that no workload step leaves tensor
// handles behind. torchbuild removes gotch's per-tensor Go ballast, so the
// garbage collector no longer runs often enough to finalise forgotten
// handles: a step that forgets one leaks its storage until the next
// collection, which on a small Go heap may be many steps away.
func TestStepsDropEveryTensor(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
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
	for _, w := range []Workload{Train, FGSMRS, PGD10, APGDCE, Infer, Loader} {
		t.Run(string(w), func(t *testing.T) {
			r, err := newRunner(w, runnerConfig{spec: spec.WithDefaults(), batch: 4, eps: DefaultEps, lr: DefaultLR, seed: 1})
			require.NoError(t, err)
			defer r.close()
			_, err = r.step() // the first step may create lasting state (momentum buffers)
			require.NoError(t, err)
			before := liveTensors()
			for range 3 {
				_, err = r.step()
				require.NoError(t, err)
			}
			assert.Equal(t, before, liveTensors(), "tensor handles left alive by 3 steps of %s", w)
		})
	}
}
