package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/recipe"
)

func TestRecipePrecision(t *testing.T) {
	for _, tc := range []struct {
		p    amp.Precision
		want amp.Precision
		err  string
	}{
		{"", "", ""},
		{amp.FP32, "", ""}, // fp32 and unset are one recipe, so old runs resume
		{amp.BF16, amp.BF16, ""},
		{amp.FP16, amp.FP16, ""},
		{amp.Auto, amp.Auto, "resolve it"},
		{"int8", "int8", `precision "int8"`},
	} {
		t.Run(string(tc.p), func(t *testing.T) {
			r := quickRecipe(recipe.FGSMRS, 1)
			r.Precision = tc.p
			r = r.WithDefaults()
			assert.Equal(t, tc.want, r.Precision)
			if tc.err == "" {
				assert.NoError(t, r.Validate())
			} else {
				assert.ErrorContains(t, r.Validate(), tc.err)
			}
		})
	}
	_, err := NewStepper(newModel(1), recipe.Recipe{Precision: amp.FP16})
	assert.ErrorContains(t, err, "needs a CUDA device", "fp16 on the CPU is refused up front")
}

// One Fast-AT step in bf16 from the same weights and batch gives a loss
// within bf16's rounding of fp32's, and updates the fp32 master weights by
// nearly the same amount; the weights stay fp32.
func TestBF16StepTracksFP32(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 128, 16)
	b := firstBatch(t, d, 64)
	step := func(p amp.Precision) (float64, map[string][]float32) {
		m := newModel(3)
		defer m.Vars.Destroy()
		r := quickRecipe(recipe.FGSMRS, 1)
		r.Precision = p
		st, err := NewStepper(m, r)
		require.NoError(t, err)
		defer st.Close()
		var loss float64
		for range 3 {
			loss, _, err = st.Step(b, 0.05)
			require.NoError(t, err)
		}
		vars, err := varsOf(m.Vars)
		require.NoError(t, err)
		for _, v := range vars {
			assert.Equal(t, gotch.Float, v.t.DType(), "%s stays fp32", v.name)
		}
		releaseVars(vars)
		return loss, weights(t, m)
	}
	l32, w32 := step(amp.FP32)
	l16, w16 := step(amp.BF16)
	t.Logf("loss after 3 Fast-AT steps: fp32 %.5f, bf16 %.5f", l32, l16)
	assert.InEpsilon(t, l32, l16, 0.03)
	// The bf16 run's update must be the fp32 run's, up to rounding, over
	// all weights together (a bias before a batch norm has a gradient of
	// ~0 in exact arithmetic: only rounding moves it).
	w0 := weights(t, newModel(3))
	var num, den float64
	for name, a := range w32 {
		for i := range a {
			d32, d16 := float64(a[i]-w0[name][i]), float64(w16[name][i]-w0[name][i])
			num += (d32 - d16) * (d32 - d16)
			den += d32 * d32
		}
	}
	rel := math.Sqrt(num / den)
	t.Logf("relative L2 difference of the 3-step updates, bf16 vs fp32: %.4f", rel)
	assert.Less(t, rel, 0.05)
}

func firstBatch(t *testing.T, d Data, n int) *data.Batch {
	t.Helper()
	l, err := data.NewLoader(d.Train, data.LoaderConfig{BatchSize: n, DropLast: true})
	require.NoError(t, err)
	for b, err := range l.Batches(context.Background(), 0) {
		require.NoError(t, err)
		return b
	}
	t.Fatal("no batch")
	return nil
}

// Adversarial inputs made while training in bf16 are fp32 and inside the
// ε-ball to fp32 rounding, not bf16's (8/255 is 0.0313726 in fp32,
// 0.0313721 in bf16).
func TestBF16PerturbationStaysInTheFP32Ball(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 64, 16)
	b := firstBatch(t, d, 64)
	m := newModel(5)
	defer m.Vars.Destroy()
	net, err := amp.Wrap(m.Net, gotch.CPU, amp.BF16)
	require.NoError(t, err)
	x, y, err := torchbatch.Tensors(b, gotch.CPU)
	require.NoError(t, err)
	defer drop(x, y)
	const eps = 8.0 / 255
	for _, steps := range []int{1, 5} {
		adv, err := perturbCE(net, x, y, linf{eps: eps, step: 1.25 * eps, steps: steps, randomStart: true, train: true})
		require.NoError(t, err)
		assert.Equal(t, gotch.Float, adv.DType())
		diff := adv.MustSub(x, false).MustAbs(true).MustMax(true)
		got := diff.Float64Values()[0]
		diff.MustDrop()
		adv.MustDrop()
		assert.LessOrEqual(t, got, eps+1e-7, "%d steps", steps)
		assert.Greater(t, got, eps-1e-6, "%d steps: the sign steps reach the ball's surface", steps)
	}
	assert.Equal(t, 0, amp.Depth())
}

// Checkpoints are fp32 whatever the training precision: a bf16 run's
// resume file and exported model hold only float32 tensors, and the
// summary names both precisions.
func TestBF16RunCheckpointsAreFP32(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 256, 64)
	dir := t.TempDir()
	r := quickRecipe(recipe.FGSMRS, 1)
	r.Precision = amp.BF16
	res, err := Run(context.Background(), newModel(1), d, r, Options{OutDir: dir, Logger: quietLogger()})
	require.NoError(t, err)
	assert.Equal(t, "bf16", res.Precision)
	assert.Equal(t, "fp32", res.EvalPrecision)
	for _, file := range []string{ModelFile, lastFile(1)} {
		saved, err := loadTensors(filepath.Join(dir, file), gotch.CPU)
		require.NoError(t, err)
		require.NotEmpty(t, saved)
		for name, tsr := range saved {
			if name == "" {
				continue
			}
			dt, err := amp.DTypeOf(tsr)
			require.NoError(t, err)
			if tsr.DType() != gotch.Int64 { // counters, if any
				assert.Equal(t, gotch.Float, dt, "%s: %s", file, name)
			}
		}
		dropAll(saved)
	}
	var st struct {
		Recipe recipe.Recipe `json:"recipe"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &st))
	assert.Equal(t, amp.BF16, st.Recipe.Precision)
}
