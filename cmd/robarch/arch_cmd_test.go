package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runArch(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newArchCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestArchListNamesEveryPreset(t *testing.T) {
	out, err := runArch(t, "list")
	require.NoError(t, err)
	for _, name := range []string{"resnet50", "robarch-s", "wrn-28-10", "micro"} {
		assert.Contains(t, out, name)
	}
	out, err = runArch(t, "list", "--json")
	require.NoError(t, err)
	var entries []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &entries))
	byName := map[string]float64{}
	for _, e := range entries {
		byName[e["name"].(string)] = e["params"].(float64)
	}
	assert.Equal(t, 26_143_228.0, byName["robarch-s"])
}

func TestArchShowJSONHasTheScriptedFields(t *testing.T) {
	out, err := runArch(t, "show", "robarch-s", "--json")
	require.NoError(t, err)
	var got struct {
		Name   string          `json:"name"`
		Params int64           `json:"params"`
		MACs   int64           `json:"macs"`
		Spec   json.RawMessage `json:"spec"`
		Stages []struct {
			Stage string `json:"stage"`
		} `json:"stages"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, "robarch-s", got.Name)
	assert.Equal(t, int64(26_143_228), got.Params)
	assert.Greater(t, got.MACs, int64(1e9))
	assert.Contains(t, string(got.Spec), `"stages"`)
	assert.Len(t, got.Stages, 6) // stem, 4 stages, head
}

func TestArchShowBudgetAndInput(t *testing.T) {
	out, err := runArch(t, "show", "resnet50", "--budget", "10M", "--input", "3x64x64", "--json")
	require.NoError(t, err)
	var got struct {
		Params int64  `json:"params"`
		MACs   int64  `json:"macs"`
		Input  string `json:"input"`
		Fit    struct {
			Budget int64 `json:"budget"`
		} `json:"fit"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.InDelta(t, 10e6, float64(got.Params), 0.02*10e6)
	assert.Equal(t, "3x64x64", got.Input)
	assert.Equal(t, int64(10_000_000), got.Fit.Budget)

	out, err = runArch(t, "show", "micro")
	require.NoError(t, err)
	assert.Contains(t, out, "stage3")
	assert.Contains(t, out, "params  272186")
}

func TestArchShowFileAndErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "net.yaml")
	require.NoError(t, os.WriteFile(path, []byte("name: tiny\nclasses: 3\ninput: {channels: 1, height: 8}\nstem: {width: 8}\nstages: [{depth: 1, width: 8, block: basic}]\n"), 0o644))
	out, err := runArch(t, "show", path, "--json")
	require.NoError(t, err)
	assert.Contains(t, out, `"name": "tiny"`)

	_, err = runArch(t, "show", "no-such-net")
	assert.ErrorContains(t, err, "neither a preset")
	_, err = runArch(t, "show", "resnet50", "--budget", "lots")
	assert.ErrorContains(t, err, "--budget")
	_, err = runArch(t, "show", "resnet50", "--budget", "100")
	assert.ErrorContains(t, err, "nearest reachable")
}
