package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/recipe"
)

// quickRecipe trains the tiny net for a few dozen steps.
func quickRecipe(method recipe.Method, epochs int) recipe.Recipe {
	return recipe.Recipe{
		Method: method, Eps: 0.1, Epochs: epochs, BatchSize: 64, Seed: 7,
		EvalSteps: 3, FinalSteps: 5, EvalBatchSize: 256,
	}
}

func TestStandardTrainingLearns(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 1024, 256)
	dir := t.TempDir()
	r := quickRecipe(recipe.Standard, 3)
	r.Schedule, r.LR = recipe.Cosine, 0.1
	res, err := Run(context.Background(), newModel(1), d, r, Options{OutDir: dir, Logger: quietLogger()})
	require.NoError(t, err)

	assert.Greater(t, res.CleanAcc, 0.6, "10 classes: chance is 0.1")
	assert.LessOrEqual(t, res.PGDAcc, res.CleanAcc)
	assert.Equal(t, 256, res.EvalExamples)
	require.Len(t, res.History, 3)
	assert.Less(t, res.History[2].TrainLoss, res.History[0].TrainLoss)
	assert.Greater(t, res.Params, int64(0))
	assert.Positive(t, res.ImagesPerSec)
	assert.Positive(t, res.PeakRSSBytes)

	var summary map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &summary))
	assert.InDelta(t, res.CleanAcc, summary["clean_acc"], 1e-12)
	assert.InDelta(t, res.PGDAcc, summary["pgd_acc"], 1e-12)
	assert.Equal(t, "standard", summary["method"])

	lines := readJSONLines(t, filepath.Join(dir, MetricsLog))
	require.Len(t, lines, 3)
	for i, l := range lines {
		assert.EqualValues(t, i+1, l["epoch"])
		for _, key := range []string{"lr", "train_loss", "train_acc", "clean_acc", "pgd_acc", "images_per_s", "seconds"} {
			assert.Contains(t, l, key)
		}
	}
	assert.FileExists(t, filepath.Join(dir, ModelFile))
	assert.FileExists(t, filepath.Join(dir, lastFile(3)))
	assert.NoFileExists(t, filepath.Join(dir, lastFile(2)), "older resume files are removed")
}

// Fast-AT must give robustness a standard-trained net lacks: at ε = 0.15
// the standard net's PGD accuracy collapses while the FGSM-RS net's stays
// well above chance (measured: see the test log).
func TestFastATIsRobust(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 1024, 256)
	train := func(method recipe.Method) *Result {
		r := quickRecipe(method, 4)
		r.Eps, r.EvalSteps, r.FinalSteps = 0.15, 5, 10
		res, err := Run(context.Background(), newModel(1), d, r, Options{OutDir: t.TempDir(), Logger: quietLogger()})
		require.NoError(t, err)
		t.Logf("%s: clean %.3f, PGD-10 %.3f", method, res.CleanAcc, res.PGDAcc)
		return res
	}
	fast, std := train(recipe.FGSMRS), train(recipe.Standard)
	assert.Greater(t, fast.PGDAcc, 0.3, "10 classes: chance is 0.1")
	assert.Greater(t, fast.PGDAcc, std.PGDAcc+0.1)
	assert.Greater(t, fast.CleanAcc, 0.5)
}

func TestPGDAndTRADESTrain(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 512, 128)
	for _, method := range []recipe.Method{recipe.PGD, recipe.TRADES} {
		t.Run(string(method), func(t *testing.T) {
			lockThread(t)
			r := quickRecipe(method, 2)
			r.Steps = 3
			res, err := Run(context.Background(), newModel(1), d, r, Options{OutDir: t.TempDir(), Logger: quietLogger()})
			require.NoError(t, err)
			t.Logf("%s: clean %.3f, PGD %.3f, losses %.3f → %.3f", method, res.CleanAcc, res.PGDAcc, res.History[0].TrainLoss, res.History[1].TrainLoss)
			assert.Greater(t, res.CleanAcc, 0.3)
			assert.Greater(t, res.PGDAcc, 0.15)
			assert.Less(t, res.History[1].TrainLoss, res.History[0].TrainLoss)
		})
	}
}

func TestNonFiniteLossStopsWithEpochAndStep(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 512, 64)
	dir := t.TempDir()
	r := quickRecipe(recipe.Standard, 2)
	r.Schedule, r.LR, r.EvalEps = recipe.Constant, 1e12, 0
	_, err := Run(context.Background(), newModel(1), d, r, Options{OutDir: dir, Logger: quietLogger()})
	var nf *NonFiniteLossError
	require.True(t, errors.As(err, &nf), "got %v", err)
	assert.Equal(t, 1, nf.Epoch)
	assert.Greater(t, nf.Step, 1, "the first step's loss is finite; the exploded weights make a later one non-finite")
	assert.True(t, math.IsNaN(nf.Loss) || math.IsInf(nf.Loss, 0))
	assert.Contains(t, err.Error(), "at epoch 1 step")
	assert.Contains(t, err.Error(), lastFile(0))

	st, err := readState(dir)
	require.NoError(t, err)
	assert.Equal(t, 0, st.EpochsDone)
	assert.Equal(t, lastFile(0), st.Last)
	m := newModel(5)
	require.NoError(t, LoadWeights(m, filepath.Join(dir, st.Last)), "the last good checkpoint loads")
	for name, vals := range weights(t, m) {
		for _, v := range vals {
			require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "%s holds %v", name, v)
		}
	}
}

func TestRunRefusesExistingRunAndChangedRecipe(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 256, 64)
	dir := t.TempDir()
	r := quickRecipe(recipe.Standard, 1)
	_, err := Run(context.Background(), newModel(1), d, r, Options{OutDir: dir, Logger: quietLogger()})
	require.NoError(t, err)

	_, err = Run(context.Background(), newModel(1), d, r, Options{OutDir: dir, Logger: quietLogger()})
	assert.ErrorContains(t, err, "already holds a run (1 of 1 epochs done): pass --resume")

	changed := r
	changed.LR = 0.05
	_, err = Run(context.Background(), newModel(1), d, changed, Options{OutDir: dir, Resume: true, Logger: quietLogger()})
	assert.ErrorContains(t, err, "lr: 0.05 now, 0.1 in the run")

	// The evaluation batch size changes no number: a resume may change it.
	bigger := r
	bigger.EvalBatchSize = 32
	_, err = Run(context.Background(), newModel(1), d, bigger, Options{OutDir: dir, Resume: true, Logger: quietLogger()})
	assert.NoError(t, err)
}

func TestExportWritesTheChosenCheckpoint(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 256, 64)
	dir := t.TempDir()
	m := newModel(1)
	var exported map[string][]float32
	export := func(dir string, s Summary) (string, error) {
		exported = weights(t, m)
		assert.Equal(t, 1, s.Epoch)
		return "exported.bin", os.WriteFile(filepath.Join(dir, "exported.bin"), []byte("x"), 0o644)
	}
	r := quickRecipe(recipe.Standard, 2)
	res, err := Run(context.Background(), m, d, r, Options{OutDir: dir, Logger: quietLogger(), Export: export,
		evaluate: scriptedEval(0.5, 0.3)}) // epoch 1 is the best
	require.NoError(t, err)
	assert.Equal(t, "exported.bin", res.Checkpoint)
	chosen := newModel(3)
	require.NoError(t, LoadWeights(chosen, filepath.Join(dir, bestFile(1))))
	assert.Equal(t, weights(t, chosen), exported, "the model holds epoch 1's weights when exporting")
	assert.Equal(t, weights(t, chosen), weights(t, m), "and after Run returns")
	info, err := os.Stat(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())
}

func TestCheckpointAlwaysNamesACompleteFile(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 256, 64)
	dir := t.TempDir()
	// Leftovers of a killed writer must not confuse the run.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "."+StateFile+".tmp-123"), []byte("{"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, lastFile(7)+".tmp-99"), []byte("garbage"), 0o644))
	var seen []int
	onEpoch := func(em EpochMetrics) {
		st, err := readState(dir)
		require.NoError(t, err)
		assert.Equal(t, em.Epoch, st.EpochsDone)
		require.NoError(t, LoadWeights(newModel(9), filepath.Join(dir, st.Last)))
		seen = append(seen, st.EpochsDone)
	}
	res, err := Run(context.Background(), newModel(1), d, quickRecipe(recipe.Standard, 2), Options{OutDir: dir, Logger: quietLogger(), OnEpoch: onEpoch})
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, seen)
	best, err := os.Stat(filepath.Join(dir, bestFile(res.Epoch)))
	require.NoError(t, err)
	model, err := os.Stat(filepath.Join(dir, ModelFile))
	require.NoError(t, err)
	assert.True(t, os.SameFile(best, model), "model.ot is the chosen epoch's file")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{ModelFile, StateFile, MetricsFile, MetricsLog, lastFile(2), bestFile(res.Epoch)}, names)
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}

// scriptedEval returns the given per-epoch PGD accuracies instead of
// attacking, to drive the catastrophic-overfitting logic.
func scriptedEval(pgd ...float64) func(context.Context, ts.ModuleT, data.Source, gotch.Device, EvalConfig) (EvalResult, error) {
	epoch := 0
	return func(context.Context, ts.ModuleT, data.Source, gotch.Device, EvalConfig) (EvalResult, error) {
		epoch++
		return EvalResult{N: 100, CleanAcc: 0.9, PGDAcc: pgd[epoch-1]}, nil
	}
}

func TestCatastrophicOverfittingIsFlagged(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 256, 64)
	for _, stop := range []bool{false, true} {
		t.Run(fmt.Sprintf("stop=%v", stop), func(t *testing.T) {
			lockThread(t)
			var logs bytes.Buffer
			r := quickRecipe(recipe.FGSMRS, 4)
			r.StopOnOverfit = stop
			dir := t.TempDir()
			res, err := Run(context.Background(), newModel(1), d, r, Options{
				OutDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				evaluate: scriptedEval(0.40, 0.45, 0.05, 0.04),
			})
			require.NoError(t, err)
			assert.Contains(t, logs.String(), "catastrophic overfitting: PGD accuracy fell from 0.4500 (epoch 2) to 0.0500 at epoch 3")
			assert.True(t, res.CatastrophicOverfitting)
			assert.Equal(t, 3, res.OverfitEpoch)
			assert.Equal(t, 2, res.Epoch, "the best epoch before the collapse is chosen")
			assert.Equal(t, stop, res.StoppedEarly)
			if stop {
				assert.Len(t, res.History, 3)
			} else {
				assert.Len(t, res.History, 4)
			}
			assert.True(t, res.History[2].Overfit)
			assert.False(t, res.History[1].Overfit)
			var summary map[string]any
			raw, err := os.ReadFile(filepath.Join(dir, MetricsFile))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(raw, &summary))
			assert.Equal(t, true, summary["catastrophic_overfitting"])
		})
	}
}
