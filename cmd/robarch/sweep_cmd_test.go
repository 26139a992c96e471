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
