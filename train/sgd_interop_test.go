package train

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// systemPython is Debian's interpreter, which has python3-torch.
const systemPython = "/usr/bin/python3"

// torchSGD runs torch.optim.SGD on the problem read from stdin (a weight
// with weight decay, a bias without, one gradient per step) and prints
// the final parameters; float32 values survive JSON exactly as doubles.
const torchSGD = `
import json, sys
import torch
q = json.load(sys.stdin)
torch.set_num_threads(2)
w = torch.tensor(q["w"], dtype=torch.float32).reshape(q["shape"]).requires_grad_(True)
b = torch.tensor(q["b"], dtype=torch.float32).requires_grad_(True)
opt = torch.optim.SGD([{"params": [w], "weight_decay": q["wd"]}, {"params": [b], "weight_decay": 0}],
                      lr=q["lrs"][0], momentum=q["momentum"], nesterov=q["nesterov"])
for gw, gb, lr in zip(q["gw"], q["gb"], q["lrs"]):
    w.grad = torch.tensor(gw, dtype=torch.float32).reshape(q["shape"])
    b.grad = torch.tensor(gb, dtype=torch.float32)
    for g in opt.param_groups:
        g["lr"] = lr
    opt.step()
json.dump({"w": w.detach().flatten().tolist(), "b": b.detach().tolist()}, sys.stdout)
`

func randomFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// TestSGDMatchesPyTorch checks that robarch's SGD step gives bit-identical
// parameters to torch.optim.SGD over three steps, on a weight large enough
// (50,000 values) for libtorch to split its kernels across threads.
func TestSGDMatchesPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("PyTorch comparison skipped in -short mode")
	}
	if out, err := exec.Command(systemPython, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("skipping: %s cannot import torch (apt-get install python3-torch): %v\n%s", systemPython, err, out)
	}
	lockThread(t)
	const rows, cols = 200, 250
	lrs := []float64{0.1, 0.05, 0.2}
	for _, tc := range []struct {
		name string
		cfg  SGDConfig
	}{
		{"momentum and weight decay", SGDConfig{Momentum: 0.9, WeightDecay: 5e-4}},
		{"nesterov", SGDConfig{Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4}},
		{"plain", SGDConfig{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			w0, b0 := randomFloats(r, rows*cols), randomFloats(r, cols)
			var gw, gb [][]float32
			for range lrs {
				gw, gb = append(gw, randomFloats(r, rows*cols)), append(gb, randomFloats(r, cols))
			}

			vs := nn.NewVarStore(gotch.CPU)
			defer vs.Destroy()
			w, err := vs.Root().Add("weight", ts.MustOfSlice(w0).MustView([]int64{rows, cols}, true), true)
			require.NoError(t, err)
			b, err := vs.Root().Add("bias", ts.MustOfSlice(b0), true)
			require.NoError(t, err)
			opt, err := NewSGD(vs, tc.cfg)
			require.NoError(t, err)
			defer opt.Close()
			for i, lr := range lrs {
				// Σ w⊙Gw + Σ b⊙Gb has gradients exactly Gw and Gb.
				a := ts.MustOfSlice(gw[i]).MustView([]int64{rows, cols}, true)
				c := ts.MustOfSlice(gb[i])
				loss := w.MustMul(a, false).MustSum(gotch.Float, true).MustAdd(b.MustMul(c, false).MustSum(gotch.Float, true), true)
				require.NoError(t, loss.Backward())
				drop(a, c, loss)
				_, err := opt.Step(lr)
				require.NoError(t, err)
			}

			q, err := json.Marshal(map[string]any{"shape": []int{rows, cols}, "w": w0, "b": b0, "gw": gw, "gb": gb,
				"lrs": lrs, "momentum": tc.cfg.Momentum, "wd": tc.cfg.WeightDecay, "nesterov": tc.cfg.Nesterov})
			require.NoError(t, err)
			cmd := exec.Command(systemPython, "-c", torchSGD)
			cmd.Stdin = bytes.NewReader(q)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, stderr.String())
			var want struct{ W, B []float32 }
			require.NoError(t, json.Unmarshal(out, &want))

			gotW, err := w.Flatten(0, -1, false)
			require.NoError(t, err)
			defer drop(gotW)
			gw32, err := float32s(gotW)
			require.NoError(t, err)
			b32, err := float32s(b)
			require.NoError(t, err)
			assert.Equal(t, want.W, gw32, "weight after %d steps", len(lrs))
			assert.Equal(t, want.B, b32, "bias after %d steps", len(lrs))
		})
	}
}
