package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/train"
	"github.com/robarch/robarch/trainrun"
)

// runTrainCmd runs `robarch train args...` under a root with the global
// flags, as main wires it.
func runTrainCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	v := viper.New()
	root := &cobra.Command{
		Use: "robarch", SilenceUsage: true, SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return setup(cmd, v) },
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "")
	pf.String("log-level", "warn", "")
	pf.Int("threads", 1, "")
	root.AddCommand(newTrainCmd(v))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"train"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestTrainCommandTrainsResumesAndExports(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"--model", "micro", "--dataset", "synthetic", "--train-size", "256", "--test-size", "64",
		"--method", "fgsm-rs", "--eps", "0.1", "--epochs", "1", "--batch-size", "64",
		"--eval-steps", "2", "--final-steps", "3", "--progress", "none", "--out", dir}
	out, err := runTrainCmd(t, args...)
	require.NoError(t, err, out)
	assert.Contains(t, out, "clean_acc")
	assert.Contains(t, out, "(PGD-3, eps 0.1, 64 test examples; chosen epoch 1 of 1)")

	var summary map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, train.MetricsFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &summary))
	for _, key := range []string{"clean_acc", "pgd_acc"} {
		require.Contains(t, summary, key)
		v := summary[key].(float64)
		assert.True(t, v >= 0 && v <= 1, "%s = %v is a fraction", key, v)
	}
	assert.Equal(t, trainrun.CheckpointFile, summary["checkpoint"])
	assert.Equal(t, "micro", summary["meta"].(map[string]any)["model"])

	info, err := model.ReadCheckpointInfo(filepath.Join(dir, trainrun.CheckpointFile))
	require.NoError(t, err)
	assert.Equal(t, "micro", info.Spec.Name)
	assert.Equal(t, "fgsm-rs", info.Meta["method"])
	assert.Equal(t, summary["clean_acc"], mustFloat(t, info.Meta["clean_acc"]))

	_, err = runTrainCmd(t, args...)
	assert.ErrorContains(t, err, "already holds a run (1 of 1 epochs done): pass --resume")

	again, err := runTrainCmd(t, append(args, "--resume")...)
	require.NoError(t, err, again)
	assert.Contains(t, again, "clean_acc")
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	require.NoError(t, json.Unmarshal([]byte(s), &f))
	return f
}

func TestTrainCommandRejectsBadFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	base := []string{"--model", "micro", "--dataset", "synthetic", "--out", out}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no model", []string{"--dataset", "synthetic", "--out", out}, "--model is required"},
		{"no out", []string{"--model", "micro"}, "--out is required"},
		{"eps in pixels without unit", append(base, "--eps", "8"), "write 8/255 or 8px"},
		{"unknown method", append(base, "--method", "fgsm"), `method "fgsm": allowed values are standard, fgsm-rs, pgd, trades`},
		{"unknown schedule", append(base, "--schedule", "linear"), `schedule "linear": allowed values are onecycle, cosine, step, constant`},
		{"bad milestones", append(base, "--schedule", "step", "--milestones", "5,x"), "--milestones"},
		{"bad progress", append(base, "--progress", "fancy"), `--progress "fancy": allowed values are auto, bar, lines, none`},
		{"unknown model", []string{"--model", "nosuchnet", "--dataset", "synthetic", "--out", out}, "neither a preset"},
		{"unknown dataset", []string{"--model", "micro", "--dataset", "svhn", "--out", out}, `unknown dataset "svhn"`},
		{"no such device", append(base, "--device", "tpu"), "--device"},
		{"unknown precision", append(base, "--precision", "int8"), `--precision: precision "int8": allowed values are fp32, bf16, fp16, auto`},
		{"fp16 on the CPU", append(base, "--precision", "fp16"), "--precision: precision fp16: needs a CUDA device"},
		{"steps under fgsm-rs", append(base, "--method", "fgsm-rs", "--steps", "10"), "--steps: read only by method pgd or trades; method fgsm-rs does not read it"},
		{"peak under cosine", append(base, "--method", "pgd", "--peak-at", "0.3"), "--peak-at: read only by schedule onecycle; this recipe's schedule is cosine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runTrainCmd(t, tc.args...)
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
	assert.NoDirExists(t, out, "nothing is written for a refused command")
}
