package main

import (
	"github.com/robarch/robarch/data/fixturegen"

	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/robustbench"
)

// fakeCIFAR10 writes a CIFAR-10 binary folder with n test records.
func fakeCIFAR10(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, fixturegen.WriteCIFAR10(dir, n))
	return dir
}

// tinyDMWeights writes a small DM-layout wide ResNet's spec file and its
// state dict in RobustBench's names.
func tinyDMWeights(t *testing.T) (specFile, weights string) {
	t.Helper()
	dir := t.TempDir()
	s, err := arch.Get("rb-dm-wrn-28-10-silu")
	require.NoError(t, err)
	s.Name = "tiny-dm"
	s.Stem.Width = 8
	s.SetDepths(1, 1, 1)
	for i, w := range []int{8, 16, 32} {
		s.Stages[i].Width = w
	}
	y, err := arch.EncodeYAML(s)
	require.NoError(t, err)
	specFile, weights = filepath.Join(dir, "tiny-dm.yaml"), filepath.Join(dir, "tiny-dm.safetensors")
	require.NoError(t, os.WriteFile(specFile, y, 0o644))
	w := torchrt.NewWorker()
	defer w.Close()
	require.NoError(t, w.Do(func() error {
		torchrt.Seed(3)
		net, err := model.Build(nn.NewVarStore(gotch.CPU), s)
		if err != nil {
			return err
		}
		return model.ExportWeights(net, weights)
	}))
	return specFile, weights
}

func TestEvalRobustBenchProtocol(t *testing.T) {
	cifar := fakeCIFAR10(t, 30)
	spec, weights := tinyDMWeights(t)
	info := filepath.Join(t.TempDir(), "model_info.json")
	args := []string{"--protocol", "robustbench", "--model", spec, "--weights", weights, "--dataset", "cifar10",
		"--data-dir", cifar, "--size", "12", "--batch-size", "6", "--model-info", info, "--json"}
	out, err := runEvalCmd(t, args...)
	require.NoError(t, err, out)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.EqualValues(t, 12, res["n"], "the first 12 test points")
	assert.Equal(t, []any{"aa"}, res["attacks"], "standard AutoAttack only")
	assert.InDelta(t, 8.0/255, res["eps"].(float64), 1e-12, "RobustBench's CIFAR Linf radius")

	var mi map[string]any
	raw, err := os.ReadFile(info)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &mi))
	assert.Equal(t, "cifar10", mi["dataset"])
	assert.Equal(t, "8/255", mi["eps"])
	assert.Equal(t, robustbench.Percent(res["clean_acc"].(float64)), mi["clean_acc"])
	assert.Equal(t, robustbench.Percent(res["robust_acc"].(float64)), mi["autoattack_acc"])
	assert.EqualValues(t, 1, mi["number_forward_passes"])
	for _, k := range robustbench.ModelInfoKeys {
		assert.Contains(t, mi, k, "every ModelInfo field is written")
	}

	// An existing file keeps what the user filled in.
	mi["footnote"], mi["additional_data"] = "50M synthetic images", false
	raw, err = json.Marshal(mi)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(info, raw, 0o644))
	out, err = runEvalCmd(t, args...)
	require.NoError(t, err, out)
	raw, err = os.ReadFile(info)
	require.NoError(t, err)
	mi = map[string]any{}
	require.NoError(t, json.Unmarshal(raw, &mi))
	assert.Equal(t, "50M synthetic images", mi["footnote"])
	assert.Equal(t, false, mi["additional_data"])
}

func TestEvalRobustBenchProtocolRejects(t *testing.T) {
	cifar := fakeCIFAR10(t, 5)
	spec, weights := tinyDMWeights(t)
	base := []string{"--model", spec, "--weights", weights, "--data-dir", cifar}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"other attacks", []string{"--protocol", "robustbench", "--dataset", "cifar10", "--attacks", "pgd20"}, "standard AutoAttack only"},
		{"model info alone", []string{"--dataset", "cifar10", "--model-info", "x.json"}, "needs --protocol robustbench"},
		{"dataset", []string{"--protocol", "robustbench", "--dataset", "fashion-mnist"}, "want cifar10, cifar100 or imagefolder:DIR"},
		{"protocol", []string{"--protocol", "autoattack", "--dataset", "cifar10"}, "want one of robarch, robustbench"},
		{"too many points", []string{"--protocol", "robustbench", "--dataset", "cifar10", "--size", "6"}, "only 5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runEvalCmd(t, append(base, c.args...)...)
			require.Error(t, err, out)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// export writes a checkpoint's state dict in RobustBench's names: with
// num_batches_tracked, without robarch's input mean/std buffers.
func TestExportCommandWritesTheNamingsStateDict(t *testing.T) {
	dir := t.TempDir()
	specFile, _ := tinyDMWeights(t)
	s, err := arch.Load(specFile)
	require.NoError(t, err)
	ckpt, out := filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "rb.safetensors")
	w := torchrt.NewWorker()
	defer w.Close()
	require.NoError(t, w.Do(func() error {
		net, err := model.Build(nn.NewVarStore(gotch.CPU), s)
		if err != nil {
			return err
		}
		return model.SaveCheckpoint(ckpt, net, nil)
	}))
	cmd := newExportCmd()
	cmd.SetArgs([]string{"--weights", ckpt, "--out", out})
	require.NoError(t, cmd.Execute())
	require.NoError(t, w.Do(func() error {
		sd, _, err := model.ReadSafetensors(out)
		if err != nil {
			return err
		}
		assert.Contains(t, sd, "init_conv.weight")
		assert.Contains(t, sd, "layer.1.block.0.shortcut.weight")
		assert.Contains(t, sd, "layer.2.block.0.batchnorm_0.num_batches_tracked")
		assert.Contains(t, sd, "logits.bias")
		assert.NotContains(t, sd, "normalization.mean")
		return nil
	}))
}
