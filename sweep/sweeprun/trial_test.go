package sweeprun

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

// TestRealSweepOnSyntheticData runs a whole (tiny) sweep through libtorch:
// arch/model builds each variant, train trains it with Fast-AT, and the
// final PGD evaluation fills the store.
func TestRealSweepOnSyntheticData(t *testing.T) {
	if testing.Short() {
		t.Skip("trains networks")
	}
	torchrt.SetThreads(0)
	ctx := context.Background()
	f, err := sweep.LoadFile("fashion-mnist-micro")
	require.NoError(t, err)
	f.Dataset = sweep.DatasetConfig{Name: "synthetic", TrainSize: 256, TestSize: 64}
	f.Factors = []sweep.Factor{{Name: sweep.FactorKernel, Levels: []string{"5"}}}
	f.Seeds = study.Seeds{List: []int64{0}}
	f.Train.Epochs, f.Train.BatchSize, f.Train.EvalSize = 1, 32, 32
	f.Eval.Size = 32
	f.Eval.Attacks = []string{"pgd10", "fgsm"}
	f.Eval.Check = sweep.CheckConfig{Attacks: []string{"apgd-ce"}, Size: 32, Seeds: 1}
	p, err := sweep.MakePlan(f)
	require.NoError(t, err)
	s := openStore(t)
	n, err := Enqueue(ctx, s, p, f)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	st, err := (&Runner{Store: s, Run: (&Executor{}).Run, WorkDir: t.TempDir()}).Work(ctx, f.Name)
	require.NoError(t, err)
	assert.Equal(t, 2, st.Done)
	trials, err := s.Trials(ctx, f.Name)
	require.NoError(t, err)
	for _, tr := range trials {
		require.Equal(t, results.StatusDone, tr.Status, tr.Error)
		for _, k := range []string{results.CleanAcc, results.PGDAcc, "pgd10_acc"} {
			assert.GreaterOrEqual(t, tr.Metrics[k], 0.0, k)
			assert.LessOrEqual(t, tr.Metrics[k], 1.0, k)
		}
		assert.LessOrEqual(t, tr.Metrics[results.PGDAcc], tr.Metrics[results.CleanAcc])
		require.Contains(t, tr.Metrics, "fgsm_acc", "attacks beyond PGD run through the attack package")
		assert.LessOrEqual(t, tr.Metrics["fgsm_acc"], tr.Metrics[results.CleanAcc])
		assert.Equal(t, tr.Metrics["fgsm_acc"], tr.Metrics["robust_acc"])
		assert.Equal(t, 32.0, tr.Metrics["eval_examples"])
		// The AutoAttack check: PGD-10 and APGD-CE on one fixed subset.
		require.Contains(t, tr.Metrics, results.CheckAAAcc)
		assert.Equal(t, 32.0, tr.Metrics[results.CheckExamples])
		for _, k := range []string{results.CheckAAAcc, results.CheckPGDAcc} {
			assert.GreaterOrEqual(t, tr.Metrics[k], 0.0, k)
			assert.LessOrEqual(t, tr.Metrics[k], 1.0, k)
		}
	}
}

func TestExecutorRejectsMismatchedData(t *testing.T) {
	ctx := context.Background()
	f, err := sweep.LoadFile("fashion-mnist-micro")
	require.NoError(t, err)
	f.Dataset = sweep.DatasetConfig{Name: "synthetic", TrainSize: 64, TestSize: 32}
	f.Baseline = "resnet18-cifar"
	f.Budget, f.Factors, f.Seeds = 0, nil, study.Seeds{List: []int64{0}}
	p, err := sweep.MakePlan(f)
	require.NoError(t, err)
	trials, err := p.Trials(f)
	require.NoError(t, err)
	cfg, err := sweep.DecodeTrialConfig(trials[0])
	require.NoError(t, err)
	_, err = (&Executor{}).Run(ctx, trials[0], cfg, t.TempDir())
	assert.ErrorContains(t, err, "takes 3x32x32 inputs with 10 classes but synthetic has 1x28x28 images")
}
