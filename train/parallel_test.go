package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/recipe"
)

// dpChildEnv makes this test binary a rank of a data-parallel run: it
// names the run directory; the recipe comes in dpRecipeEnv as JSON.
const (
	dpChildEnv  = "ROBARCH_TRAIN_DP_DIR"
	dpRecipeEnv = "ROBARCH_TRAIN_DP_RECIPE"
)

// dpData is the data of the data-parallel tests, the same in every
// process.
func dpData() (Data, error) {
	s, err := data.Open(data.NameSynthetic, data.Options{TrainSize: 640, TestSize: 128, ImageSize: 16, Seed: 3})
	if err != nil {
		return Data{}, err
	}
	return Data{Train: s.Train, Test: s.Test}, nil
}

// runDPChild trains as one rank and writes its final weights (every
// variable, batch-norm buffers included) to rank-K.json in the run
// directory.
func runDPChild(dir string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "data-parallel child:", err)
		return 3
	}
	var r recipe.Recipe
	if err := json.Unmarshal([]byte(os.Getenv(dpRecipeEnv)), &r); err != nil {
		return fail(err)
	}
	e, ok, err := dist.FromEnv(os.Getenv)
	if err != nil || !ok {
		return fail(fmt.Errorf("environment: ok %v, %v", ok, err))
	}
	g, err := dist.Join(e, time.Minute)
	if err != nil {
		return fail(err)
	}
	defer g.Close()
	d, err := dpData()
	if err != nil {
		return fail(err)
	}
	m := newModel(1)
	res, err := Run(context.Background(), m, d, r, Options{OutDir: dir, Logger: quietLogger(), Group: g})
	if err != nil {
		return fail(err)
	}
	sum, err := json.Marshal(res.Summary)
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "summary-"+strconv.Itoa(g.Rank())+".json"), sum, 0o644); err != nil {
		return fail(err)
	}
	w, err := weightsOf(m)
	if err != nil {
		return fail(err)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rank-"+strconv.Itoa(g.Rank())+".json"), b, 0o644); err != nil {
		return fail(err)
	}
	return 0
}

func readWeights(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var w map[string][]float32
	require.NoError(t, json.Unmarshal(b, &w))
	return w
}

// relDiff is max |a-b| / max |b| over the trainable-and-buffer values.
func relDiff(a, b map[string][]float32, only func(string) bool) float64 {
	var num, den float64
	for name, bv := range b {
		if only != nil && !only(name) {
			continue
		}
		av := a[name]
		for i := range bv {
			num = math.Max(num, math.Abs(float64(av[i])-float64(bv[i])))
			den = math.Max(den, math.Abs(float64(bv[i])))
		}
	}
	return num / den
}

// isBuffer names batch norm's running statistics, left out where a
// comparison is about the learnt weights alone.
func isBuffer(name string) bool {
	return filepath.Ext(name) == ".running_mean" || filepath.Ext(name) == ".running_var"
}

// TestDataParallelEqualsShardsInOneProcess is the data-parallel
// contract: two ranks on 127.0.0.1 end with bitwise-equal networks, and
// those equal (to rounding) one process running the same two shards in
// turn ("ghost batches"), for Fast-AT and PGD-AT, in fp32 and bf16.
func TestDataParallelEqualsShardsInOneProcess(t *testing.T) {
	require.True(t, dist.Available(), "this build has no c10d Gloo backend: install libgloo-dev and rebuild")
	tests := []struct {
		name      string
		method    recipe.Method
		precision amp.Precision
		clip      float64
		// augment crops (random shifts): each rank loads and augments only its
		// own rows of every batch (data.Part).
		augment bool
	}{
		{"fast-at with augmentation", recipe.FGSMRS, amp.FP32, 0, true},
		{"pgd-at with clipping", recipe.PGD, amp.FP32, 1, false},
		{"fast-at bf16", recipe.FGSMRS, amp.BF16, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := quickRecipe(tt.method, 1) // 10 steps of 64
			r.Steps, r.EvalSize, r.FinalSize, r.GradClip, r.Precision = 3, 64, 64, tt.clip, tt.precision
			r.EvalBatchSize = 24 // 3 evaluation batches: the ranks' shares differ in size
			if tt.augment {
				r.CropPad = 1
			}
			r = r.WithDefaults()
			raw, err := json.Marshal(r)
			require.NoError(t, err)

			dir := t.TempDir()
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			err = dist.Launch{N: 2, Exe: os.Args[0], Args: []string{"-test.run=^$"},
				Env:    append(os.Environ(), dpChildEnv+"="+dir, dpRecipeEnv+"="+string(raw)),
				Stdout: &out, Stderr: &errb}.Run(ctx)
			require.NoError(t, err, "%s%s", out.String(), errb.String())
			rank0 := readWeights(t, filepath.Join(dir, "rank-0.json"))
			rank1 := readWeights(t, filepath.Join(dir, "rank-1.json"))
			assert.Equal(t, rank0, rank1, "every variable bitwise equal on both ranks")
			assert.FileExists(t, filepath.Join(dir, MetricsFile), "rank 0 wrote the results")

			// The final evaluation was split across the ranks: both report
			// what one process measures on the chosen weights.
			lockThread(t)
			var sums [2]Summary
			for k := range sums {
				b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("summary-%d.json", k)))
				require.NoError(t, err)
				require.NoError(t, json.Unmarshal(b, &sums[k]))
			}
			chosen := newModel(1)
			require.NoError(t, LoadWeights(chosen, filepath.Join(dir, ModelFile)))
			d, err := dpData()
			require.NoError(t, err)
			finalSrc, err := data.SelectStratified(d.Test, r.FinalSize, r.Seed)
			require.NoError(t, err)
			alone, err := Evaluate(context.Background(), chosen.Net, finalSrc, gotch.CPU, EvalConfig{
				Eps: r.EvalEps, Steps: r.FinalSteps, BatchSize: r.EvalBatchSize, Seed: deriveSeed(r.Seed, streamFinal)})
			require.NoError(t, err)
			require.Less(t, alone.PGDAcc, alone.CleanAcc, "the attack lowers accuracy, so the comparison can fail")
			for k, s := range sums {
				assert.Equal(t, alone.N, s.EvalExamples, "rank %d", k)
				assert.Equal(t, alone.CleanAcc, s.CleanAcc, "rank %d clean accuracy", k)
				assert.Equal(t, alone.PGDAcc, s.PGDAcc, "rank %d PGD accuracy", k)
			}

			ref := r
			ref.BatchShards = 2
			m := newModel(1)
			_, err = Run(context.Background(), m, d, ref, Options{OutDir: t.TempDir(), Logger: quietLogger()})
			require.NoError(t, err)
			want := weights(t, m)
			// Batch-norm statistics included: both keep shard 0's.
			diff := relDiff(rank0, want, nil)
			t.Logf("%s: relative difference to one process with 2 shards: %.3g", tt.name, diff)
			assert.LessOrEqual(t, diff, 1e-5)

			one := r
			m1 := newModel(1)
			_, err = Run(context.Background(), m1, d, one, Options{OutDir: t.TempDir(), Logger: quietLogger()})
			require.NoError(t, err)
			assert.Greater(t, relDiff(rank0, weights(t, m1), func(n string) bool { return !isBuffer(n) }), 1e-4,
				"one shard of 64 is a different run (batch-norm statistics over 64, not 2×32): the comparison above can fail")
		})
	}
}

func TestBatchShardsMustSplitTheBatch(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 256, 64)
	tests := []struct {
		shards int
		want   string
	}{
		{3, "batch shards 3: must be 0 (one per process) or divide the batch size 64"},
		{64, "each shard of the batch size 64 needs at least 2 examples"},
	}
	for _, tt := range tests {
		r := quickRecipe(recipe.Standard, 1)
		r.BatchShards = tt.shards
		_, err := Run(context.Background(), newModel(1), d, r, Options{OutDir: t.TempDir(), Logger: quietLogger()})
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
}
