package archview

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
)

func TestPresets(t *testing.T) {
	entries, err := Presets()
	require.NoError(t, err)
	require.Len(t, entries, len(arch.List()))
	for _, e := range entries {
		assert.Positive(t, e.Params, e.Name)
		assert.Regexp(t, `^\d+x\d+x\d+$`, e.Input, e.Name)
	}
	var b strings.Builder
	require.NoError(t, WriteList(&b, entries))
	assert.Equal(t, len(entries)+1, strings.Count(b.String(), "\n"))
	assert.True(t, strings.HasPrefix(b.String(), "NAME"))
}

func TestShow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		o     ShowOptions
		input string
		fit   *Fit
		err   string
	}{
		{"as is", ShowOptions{}, "1x28x28", nil, ""},
		{"another size", ShowOptions{Input: "32x32"}, "1x32x32", nil, ""},
		{"other channels", ShowOptions{Input: "3x32x32"}, "3x32x32", nil, ""},
		{"fitted", ShowOptions{Budget: "500K"}, "1x28x28", &Fit{Budget: 500_000, Tolerance: arch.DefaultTolerance}, ""},
		{"bad input", ShowOptions{Input: "big"}, "", nil, "--input"},
		{"bad budget", ShowOptions{Budget: "lots"}, "", nil, "--budget"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, fit, err := Show("micro", tc.o)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.input, InputString(l.Spec.Input))
			if tc.fit == nil {
				assert.Nil(t, fit)
				return
			}
			require.NotNil(t, fit)
			assert.Equal(t, tc.fit.Budget, fit.Budget)
			assert.Equal(t, tc.fit.Tolerance, fit.Tolerance)
			assert.Equal(t, l.Total.Params, fit.Params)
			assert.InDelta(t, float64(fit.Budget), float64(fit.Params), fit.Tolerance*float64(fit.Budget))
		})
	}
	_, _, err := Show("no-such-net", ShowOptions{})
	assert.ErrorContains(t, err, "neither a preset")
}

// Other channels drop the spec's per-channel normalisation.
func TestShowOtherChannelsDropNormalisation(t *testing.T) {
	l, _, err := Show("resnet50", ShowOptions{Input: "1x64x64"})
	require.NoError(t, err)
	assert.Nil(t, l.Spec.Input.Mean)
	assert.Nil(t, l.Spec.Input.Std)
}

func TestStageRowsAndOutputs(t *testing.T) {
	l, fit, err := Show("micro", ShowOptions{Budget: "300K"})
	require.NoError(t, err)
	rows := StageRows(l)
	require.Len(t, rows, len(l.Stages)+2)
	assert.Equal(t, "head", rows[len(rows)-1].Stage)
	var sum int64
	for _, r := range rows {
		sum += r.Params
	}
	assert.Equal(t, l.Total.Params, sum, "the rows add up to the total")

	raw, err := json.Marshal(JSON(l, fit))
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	for _, k := range []string{"name", "params", "macs", "input", "width_depth_ratio", "fit", "stages", "spec"} {
		assert.Contains(t, got, k)
	}

	var b strings.Builder
	require.NoError(t, WriteShow(&b, l, fit))
	for _, s := range []string{"# micro", "STAGE", "stage1", "head", "params  ", "fit     budget 300K ±2%"} {
		assert.Contains(t, b.String(), s)
	}
}
