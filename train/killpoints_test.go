package train

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/recipe"
)

// resumeChildEnv makes the test binary a child that resumes (or starts)
// a run in the named directory and trains it to the end; the parent of
// TestKilledAtRandomMomentsResumesToTheSameResult kills it from outside.
const resumeChildEnv = "ROBARCH_TRAIN_RESUME_CHILD_DIR"

// killRecipe has many short epochs so that a good share of the child's
// time goes to end-of-epoch checkpoint writes (state, last-, best- files).
func killRecipe() recipe.Recipe { return quickRecipe(recipe.Standard, 12) }

func killData(t testing.TB) Data { return synthetic(t, 192, 64) }

func runResumeChild(dir string) int {
	_, err := Run(context.Background(), newModel(1), killData(&testing.T{}), killRecipe(), Options{OutDir: dir, Resume: true, Logger: quietLogger()})
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 2
	}
	return 0
}

// SIGKILL at random moments — mid-step, mid-evaluation, mid-checkpoint —
// must never leave a state a later run misreads: whatever state.json
// names must load, and resuming after every kill ends with the numbers
// and weights of a run that was never interrupted.
func TestKilledAtRandomMomentsResumesToTheSameResult(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dozen child processes")
	}
	lockThread(t)
	d := killData(t)
	straight := newModel(1)
	began := time.Now()
	want, err := Run(context.Background(), straight, d, killRecipe(), Options{OutDir: t.TempDir(), Logger: quietLogger()})
	require.NoError(t, err)
	epoch := time.Since(began) / time.Duration(killRecipe().Epochs)

	child := func(dir string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), resumeChildEnv+"="+dir)
		return cmd
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 8))
	killed, sawState := 0, 0
	finished := false
	for i := 0; i < 40 && !finished; i++ {
		before := stateStamp(dir)
		cmd := child(dir)
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Kill at a random moment of the epoch after the child's first
		// checkpoint: the child's libtorch start-up would otherwise
		// swallow most random delays.
		exited, err := waitForCheckpoint(dir, before, done)
		if exited {
			require.NoError(t, err, "child %d ended on its own with an error", i)
			finished = true
			continue
		}
		require.NoError(t, err)
		wasKilled, err := killAfter(cmd, done, time.Duration(rng.Float64()*float64(epoch)))
		require.NoError(t, err, "child %d ended on its own with an error", i)
		if wasKilled {
			killed++
		} else {
			finished = true
		}
		st, err := readState(dir)
		require.NoError(t, err, "after kill %d the state file must be whole", i)
		if st == nil {
			continue // killed before the first checkpoint
		}
		sawState++
		saved, err := loadTensors(filepath.Join(dir, st.Last), gotch.CPU)
		require.NoError(t, err, "after kill %d the state names %s, which must load", i, st.Last)
		dropAll(saved)
	}
	t.Logf("epoch %v; %d kills, state present after %d", epoch.Round(time.Millisecond), killed, sawState)
	require.True(t, finished, "the run must end within 40 children")
	require.GreaterOrEqual(t, killed, 4, "most children must be killed mid-run for the test to mean anything")
	require.Positive(t, sawState, "some kill must land after a checkpoint")

	resumed := newModel(42)
	got, err := Run(context.Background(), resumed, d, killRecipe(), Options{OutDir: dir, Resume: true, Logger: quietLogger()})
	require.NoError(t, err)
	assertSameRun(t, want, got, straight, resumed)
}

// stateStamp is the state file's modification time, zero when absent.
func stateStamp(dir string) time.Time {
	st, err := os.Stat(filepath.Join(dir, StateFile))
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// waitForCheckpoint waits until the state file changes from before; if
// the child exits first it reports that and the child's error.
func waitForCheckpoint(dir string, before time.Time, done <-chan error) (exited bool, err error) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		select {
		case err := <-done:
			return true, err
		default:
		}
		if !stateStamp(dir).Equal(before) {
			return false, nil
		}
	}
	return false, errors.New("no checkpoint within 2 minutes")
}

// killAfter sends SIGKILL to the child after delay unless it ends first.
// It reports whether the signal is what ended the child; otherwise err is
// the child's own exit error. A child that finishes between the timer and
// the signal is reaped already, and Signal then says so.
func killAfter(cmd *exec.Cmd, done <-chan error, delay time.Duration) (killed bool, err error) {
	select {
	case err := <-done:
		return false, err
	case <-time.After(delay):
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); errors.Is(err, os.ErrProcessDone) {
		return false, <-done
	} else if err != nil {
		return false, err
	}
	err = <-done
	if isKilled(err) {
		return true, nil
	}
	return false, err
}

// isKilled reports whether a child's Wait error says SIGKILL ended it.
func isKilled(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}
