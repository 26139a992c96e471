package train

import (
	"context"
	"errors"
	"github.com/robarch/robarch/recipe"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// childEnv makes the test binary a training child that SIGKILLs itself
// in the middle of epoch 2 (see TestMain).
const childEnv = "ROBARCH_TRAIN_KILL_CHILD_DIR"

// resumeRecipe is shared by the child and the parent of the kill test.
func resumeRecipe() recipe.Recipe {
	r := quickRecipe(recipe.FGSMRS, 3)
	r.Nesterov = true
	r.LabelSmoothing = 0.1
	return r
}

func resumeData(t testing.TB) Data { return synthetic(t, 512, 128) }

// runChild trains into dir and kills itself with SIGKILL at epoch 2
// step 3, as an OOM killer or a power cut would; it returns only if the
// kill did not happen.
func runChild(dir string) int {
	onStep := func(p Progress) {
		if p.Epoch == 2 && p.Step == 3 {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
	}
	_, err := Run(context.Background(), newModel(1), resumeData(&testing.T{}), resumeRecipe(), Options{OutDir: dir, Logger: quietLogger(), OnStep: onStep})
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 2
	}
	return 3
}

func TestKilledRunResumesToTheSameResult(t *testing.T) {
	lockThread(t)
	d := resumeData(t)

	straight := newModel(1)
	want, err := Run(context.Background(), straight, d, resumeRecipe(), Options{OutDir: t.TempDir(), Logger: quietLogger()})
	require.NoError(t, err)

	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "child should die by SIGKILL; err %v, output %s", err, out)
	status := exit.Sys().(syscall.WaitStatus)
	require.True(t, status.Signaled() && status.Signal() == syscall.SIGKILL, "child: %v, output %s", err, out)

	st, err := readState(dir)
	require.NoError(t, err)
	require.Equal(t, 1, st.EpochsDone, "killed in epoch 2: one epoch checkpointed")

	// A model initialised differently: everything must come from the
	// checkpoint.
	resumed := newModel(42)
	got, err := Run(context.Background(), resumed, d, resumeRecipe(), Options{OutDir: dir, Resume: true, Logger: quietLogger()})
	require.NoError(t, err)

	assertSameRun(t, want, got, straight, resumed)
	t.Logf("clean %.4f, PGD %.4f after %d epochs, straight and resumed", got.CleanAcc, got.PGDAcc, len(got.History))
}

// assertSameRun checks that a resumed run (got, model resumed) ended as an
// uninterrupted one (want, model straight): the same accuracies, history
// and weights bit for bit.
func assertSameRun(t *testing.T, want, got *Result, straight, resumed Model) {
	t.Helper()
	assert.Equal(t, want.CleanAcc, got.CleanAcc)
	assert.Equal(t, want.PGDAcc, got.PGDAcc)
	assert.Equal(t, want.Epoch, got.Epoch)
	require.Len(t, got.History, len(want.History))
	for i := range want.History {
		w, g := want.History[i], got.History[i]
		assert.Equal(t, []float64{w.LR, w.TrainLoss, w.TrainAcc, w.CleanAcc, w.PGDAcc}, []float64{g.LR, g.TrainLoss, g.TrainAcc, g.CleanAcc, g.PGDAcc}, "epoch %d", i+1)
	}
	assert.Equal(t, weights(t, straight), weights(t, resumed), "final weights bit for bit")
}

// A resume of a finished run redoes only the final evaluation and gets
// the same numbers.
func TestResumeOfFinishedRunIsStable(t *testing.T) {
	lockThread(t)
	d := synthetic(t, 256, 64)
	dir := t.TempDir()
	r := quickRecipe(recipe.Standard, 1)
	first, err := Run(context.Background(), newModel(1), d, r, Options{OutDir: dir, Logger: quietLogger()})
	require.NoError(t, err)
	again, err := Run(context.Background(), newModel(2), d, r, Options{OutDir: dir, Resume: true, Logger: quietLogger()})
	require.NoError(t, err)
	assert.Equal(t, first.CleanAcc, again.CleanAcc)
	assert.Equal(t, first.PGDAcc, again.PGDAcc)
	assert.Len(t, again.History, 1)
}
