package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A sweep file's keys change only through robarch sweep's own flags, in
// any of their three ways; a variable named after a key (ROBARCH_TRAIN_EPOCHS
// is robarch train's --epochs) leaves the sweep alone.
func TestSweepFileKeysChangeOnlyThroughSweepFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		args      []string
		epochs    int
		precision string
	}{
		{"file", nil, nil, 2, ""},
		{"train's variable", map[string]string{"ROBARCH_TRAIN_EPOCHS": "9", "ROBARCH_TRAIN_PRECISION": "bf16"}, nil, 2, ""},
		{"sweep's variable", map[string]string{"ROBARCH_SWEEP_ENQUEUE_EPOCHS": "3", "ROBARCH_SWEEP_ENQUEUE_PRECISION": "bf16"}, nil, 3, "bf16"},
		{"flag over variable", map[string]string{"ROBARCH_SWEEP_ENQUEUE_EPOCHS": "3"}, []string{"--epochs", "4"}, 4, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			trials := enqueuedSweeps(t, tc.args...)
			require.NotEmpty(t, trials)
			assert.Equal(t, tc.epochs, trials[0].Train.Epochs)
			assert.Equal(t, tc.precision, string(trials[0].Train.Precision))
		})
	}
}

// The findings study has a level for every guideline of the paper that is
// judged from pairs of networks; make run's study says which it lacks.
func TestSweepPlanShowsGuidelineCoverage(t *testing.T) {
	r := robarch(t, t.TempDir(), "sweep", "plan", "--sweep", "fashion-mnist-findings")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "every one judged from pairs of networks has a level")
	assert.Regexp(t, `stage_depths=1,3,4,1 .* 3\s*\n`, r.stdout)
	assert.Regexp(t, `spec=robarch-recipe .* combined\s*\n`, r.stdout)

	r = robarch(t, t.TempDir(), "sweep", "plan", "--sweep", "fashion-mnist-micro")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `stage_depths=1,1,1 .* 1\s*\n`, r.stdout, "one block per stage is shallower-wider (guideline 1)")
	assert.Contains(t, r.stdout, "no level bears on 3 stage-depths, 4 two-groups")
}

// One meaning per flag name: robarch sweep's final-evaluation size is
// --final-size, as in robarch train; the old --eval-size (train's
// per-epoch subset) is refused with the new name, and --final-size and
// --set reach eval.size.
func TestSweepFinalSizeFlag(t *testing.T) {
	trials := enqueuedSweeps(t, "--final-size", "32")
	require.NotEmpty(t, trials)
	assert.Equal(t, 32, trials[0].Eval.Size)
	trials = enqueuedSweeps(t, "--set", "eval.size=48")
	require.NotEmpty(t, trials)
	assert.Equal(t, 48, trials[0].Eval.Size)

	r := robarch(t, t.TempDir(), "sweep", "--dry-run", "--eval-size", "32")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "--eval-size 32: robarch sweep calls it --final-size now")
}
