package train

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"

	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
)

// On a CUDA device (make gpu-check) a short Fast-AT run trains in fp32,
// bf16 and fp16 (with the loss scaler), its per-epoch and final PGD
// evaluations run there, and its checkpoint loads back as fp32 on the CPU.
// Skipped without CUDA; CI never needs a GPU.
func TestCUDATrainingRunsInEveryPrecision(t *testing.T) {
	if torchrt.CUDADevices() == 0 {
		t.Skip("no CUDA device (run make gpu-check on a GPU machine)")
	}
	lockThread(t)
	dev := gotch.CudaBuilder(0)
	d := synthetic(t, 512, 128)
	for _, p := range []amp.Precision{amp.FP32, amp.BF16, amp.FP16} {
		t.Run(string(p), func(t *testing.T) {
			lockThread(t)
			torchrt.Seed(1)
			vs := nn.NewVarStore(dev)
			defer vs.Destroy()
			m := Model{Net: newTinyNet(vs, 1, 10), Vars: vs}
			r := quickRecipe(recipe.FGSMRS, 2)
			r.Precision = p
			dir := t.TempDir()
			res, err := Run(context.Background(), m, d, r, Options{OutDir: dir, Logger: quietLogger()})
			require.NoError(t, err)
			t.Logf("%s on CUDA: clean %.3f, PGD %.3f, %.0f images/s", p, res.CleanAcc, res.PGDAcc, res.ImagesPerSec)
			assert.Equal(t, "cuda:0", res.Device)
			assert.Equal(t, string(p), res.Precision)
			assert.Greater(t, res.CleanAcc, 0.3, "10 classes: chance is 0.1")
			saved, err := loadTensors(filepath.Join(dir, ModelFile), gotch.CPU)
			require.NoError(t, err)
			defer dropAll(saved)
			for name, tsr := range saved {
				dt, err := amp.DTypeOf(tsr)
				require.NoError(t, err)
				if dt != gotch.Int64 {
					assert.Equal(t, gotch.Float, dt, name)
				}
			}
		})
	}
}
