package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchrt"
)

func runEvalCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newEvalCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	err := cmd.Execute()
	return out.String(), err
}

// microWeights writes a freshly initialised micro net for 1×28×28
// synthetic data as a robarch checkpoint and as a plain state dict.
func microWeights(t *testing.T) (checkpoint, stateDict string) {
	t.Helper()
	return microCheckpoint(t, map[string]string{"model": "micro"})
}

// microCheckpoint is microWeights with the checkpoint's metadata given.
func microCheckpoint(t *testing.T, meta map[string]string) (checkpoint, stateDict string) {
	t.Helper()
	dir := t.TempDir()
	checkpoint, stateDict = filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "weights.safetensors")
	w := torchrt.NewWorker()
	defer w.Close()
	require.NoError(t, w.Do(func() error {
		spec, err := arch.Get("micro")
		if err != nil {
			return err
		}
		torchrt.Seed(1)
		net, err := model.Build(nn.NewVarStore(gotch.CPU), spec)
		if err != nil {
			return err
		}
		if err := model.SaveCheckpoint(checkpoint, net, meta); err != nil {
			return err
		}
		return model.ExportWeights(net, stateDict)
	}))
	return checkpoint, stateDict
}

func TestEvalCommand(t *testing.T) {
	ckpt, sd := microWeights(t)
	common := []string{"--dataset", "synthetic", "--size", "24", "--batch-size", "16", "--eps", "0.1", "--attacks", "fgsm,pgd3"}

	out, err := runEvalCmd(t, append([]string{"--weights", ckpt, "--json"}, common...)...)
	require.NoError(t, err, out)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.EqualValues(t, 24, res["n"])
	assert.Equal(t, "micro", res["model"])
	for _, key := range []string{"clean_acc", "robust_acc"} {
		v := res[key].(float64)
		assert.True(t, v >= 0 && v <= 1, "%s = %v is a fraction", key, v)
	}
	per := res["per_attack"].(map[string]any)
	require.Contains(t, per, "fgsm")
	require.Contains(t, per, "pgd3")
	for name, v := range per {
		assert.LessOrEqual(t, res["robust_acc"].(float64), v.(float64), name)
		assert.LessOrEqual(t, v.(float64), res["clean_acc"].(float64), name)
	}

	// A plain state dict needs --model; the numbers are the same weights'.
	out2, err := runEvalCmd(t, append([]string{"--weights", sd, "--model", "micro", "--json"}, common...)...)
	require.NoError(t, err, out2)
	var res2 map[string]any
	require.NoError(t, json.Unmarshal([]byte(out2), &res2))
	assert.Equal(t, res["clean_acc"], res2["clean_acc"])
	assert.Equal(t, res["per_attack"], res2["per_attack"])

	table, err := runEvalCmd(t, append([]string{"--weights", ckpt}, common...)...)
	require.NoError(t, err, table)
	for _, want := range []string{"micro", "24 examples", "clean", "fgsm", "pgd3", "worst case", "fp32 forward passes"} {
		assert.Contains(t, table, want)
	}
	assert.NotContains(t, table, "note: evaluated in")
	assert.Equal(t, "fp32", res["precision"], "evaluations are fp32 by default")
}

// eval --precision bf16 runs and says so, in the table and in the JSON.
func TestEvalCommandInBF16SaysSo(t *testing.T) {
	ckpt, _ := microWeights(t)
	common := []string{"--weights", ckpt, "--dataset", "synthetic", "--size", "24", "--batch-size", "16", "--eps", "0.1", "--attacks", "pgd3", "--precision", "bf16"}
	table, err := runEvalCmd(t, common...)
	require.NoError(t, err, table)
	assert.Contains(t, table, "bf16 forward passes")
	assert.Contains(t, table, "note: evaluated in bf16, not fp32")
	out, err := runEvalCmd(t, append(common, "--json")...)
	require.NoError(t, err, out)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, "bf16", res["precision"])
	_, err = runEvalCmd(t, "--weights", ckpt, "--dataset", "synthetic", "--size", "8", "--precision", "fp16")
	assert.ErrorContains(t, err, "needs a CUDA device")
}

func TestEvalCommandRejectsBadFlags(t *testing.T) {
	ckpt, sd := microWeights(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--weights is required"},
		{[]string{"--weights", ckpt, "--attacks", "pgd0"}, "--attacks"},
		{[]string{"--weights", ckpt, "--attacks", "cw"}, "want one of"},
		{[]string{"--weights", ckpt, "--norm", "L1"}, "--norm"},
		{[]string{"--weights", ckpt, "--eps", "8"}, "--eps"},
		{[]string{"--weights", ckpt, "--size", "-1"}, "--size"},
		{[]string{"--weights", filepath.Join(t.TempDir(), "missing.safetensors")}, "--weights"},
		{[]string{"--weights", sd, "--dataset", "synthetic", "--size", "8"}, "--model is required"},
		{[]string{"--weights", ckpt, "--dataset", "synthetic", "--image-size", "32", "--size", "8"}, "takes 1x28x28 inputs with 10 classes but synthetic has 1x32x32 images"},
	} {
		_, err := runEvalCmd(t, tc.args...)
		assert.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}

// bf16 on a CPU without bf16 instructions still runs, but the process
// says before any torch work that it is emulated; fp32 never does. doctor
// names what auto picks on this CPU. Which branch holds depends on the
// machine: both are asserted.
func TestEmulatedBF16IsWarnedAbout(t *testing.T) {
	ckpt, _ := microWeights(t)
	dir := t.TempDir()
	cpu := amp.DetectCPU()
	emulated := amp.Emulated(amp.BF16, gotch.CPU, cpu) != ""
	for _, p := range []string{"bf16", "fp32"} {
		r := robarch(t, dir, "eval", "--weights", ckpt, "--dataset", "synthetic", "--size", "8", "--batch-size", "8",
			"--eps", "0.1", "--attacks", "pgd2", "--precision", p)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, emulated && p == "bf16", strings.Contains(r.stderr, "it is emulated"), "%s: %s", p, r.stderr)
	}
	want, _ := amp.Resolve(amp.Auto, gotch.CPU, cpu)
	r := robarch(t, dir, "doctor")
	assert.Contains(t, r.stdout, "precision auto  "+string(want)+" for training on the CPU")
}

// A checkpoint is evaluated at the radius, norm and dataset it was trained
// and reported at unless the command line says otherwise; the result says
// where each came from, and a different radius is flagged.
func TestEvalTakesTheCheckpointsRadius(t *testing.T) {
	ckpt, _ := microCheckpoint(t, map[string]string{"model": "micro", "dataset": "synthetic", "eps": "0.1", "eval_eps": "0.1", "norm": "Linf"})
	common := []string{"--weights", ckpt, "--size", "16", "--batch-size", "16", "--attacks", "pgd2"}
	tests := []struct {
		name      string
		args      []string
		eps       float64
		from      map[string]any
		tableNote string
	}{
		{"from the checkpoint", nil, 0.1, map[string]any{"eps": "checkpoint", "norm": "checkpoint", "dataset": "checkpoint"}, ""},
		{"another radius, said", []string{"--eps", "8/255"}, 8.0 / 255, map[string]any{"eps": "flag", "norm": "checkpoint", "dataset": "checkpoint"},
			"note: eps 0.03137 is not the radius the checkpoint was trained and reported at (0.1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runEvalCmd(t, append(append([]string{"--json"}, common...), tc.args...)...)
			require.NoError(t, err, out)
			var res map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &res), out)
			assert.InDelta(t, tc.eps, res["eps"].(float64), 1e-12)
			assert.Equal(t, "synthetic", res["dataset"])
			assert.Equal(t, tc.from, res["from"])
			assert.InDelta(t, 0.1, res["trained_eps"].(float64), 1e-12)
			table, err := runEvalCmd(t, append(append([]string{}, common...), tc.args...)...)
			require.NoError(t, err, table)
			if tc.tableNote != "" {
				assert.Contains(t, table, tc.tableNote)
			} else {
				assert.NotContains(t, table, "is not the radius")
				assert.Contains(t, table, "eps from the checkpoint")
			}
		})
	}
}
