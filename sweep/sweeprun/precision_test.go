package sweeprun

import (
	"cmp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/sweep"
)

// train.precision is a sweep-file key (and robarch sweep --precision,
// which replaces it): aliases become their names, fp32 is the recipe's unset
// value, unknown values are refused naming the key, and auto resolves for
// the device.
func TestTrainPrecisionKey(t *testing.T) {
	for _, tc := range []struct {
		set  string
		want amp.Precision
		err  string
	}{
		{"", amp.Auto, ""}, // the shipped study's own train.precision
		{"fp32", "", ""},
		{"bfloat16", amp.BF16, ""},
		{"auto", amp.Auto, ""},
		{"int8", "", "train.precision \"int8\""},
	} {
		t.Run(tc.set, func(t *testing.T) {
			set := map[string]any{}
			if tc.set != "" {
				set["train.precision"] = tc.set
			}
			f, err := sweep.Load("fashion-mnist-micro", set)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, f.Train.Precision)
			p, err := TrainPrecision(f)
			require.NoError(t, err)
			if tc.want == amp.Auto {
				want, _ := amp.Resolve(amp.Auto, gotch.CPU, amp.DetectCPU())
				assert.Equal(t, want, p)
			} else {
				assert.Equal(t, cmp.Or(tc.want, amp.FP32), p)
			}
			env := withTrialEnv(map[string]string{"host": "h"}, sweep.TrialConfig{Sweep: f})
			assert.Equal(t, string(p), env["precision"])
			assert.Equal(t, "fp32", env["eval_precision"])
			assert.Equal(t, "h", env["host"])
		})
	}
}

// train.precision auto is resolved once per sweep: the log line, the
// preflight, each trial and its record ask, and the hardware is probed
// once, so all of them see the same precision.
func TestTrainPrecisionResolvedOncePerSweep(t *testing.T) {
	probes := 0
	defer func(d func(gotch.Device) amp.Hardware) { detect = d }(detect)
	detect = func(d gotch.Device) amp.Hardware { probes++; return amp.Detect(d) }
	f, err := sweep.Load("fashion-mnist-micro", map[string]any{"dataset.name": "synthetic", "dataset.train_size": 0,
		"train.precision": "auto", "device": "cpu", "description": "resolved once"})
	require.NoError(t, err)
	resolvedMu.Lock()
	clear(resolved)
	resolvedMu.Unlock()
	p, _, err := ResolveTrainPrecision(f) // robarch sweep's log line
	require.NoError(t, err)
	plan, err := sweep.MakePlan(f)
	require.NoError(t, err)
	require.NoError(t, Preflight(f, plan, PreflightOptions{DeviceAvailable: true}))
	for range 3 { // each trial, then its record
		got, err := TrainPrecision(f)
		require.NoError(t, err)
		assert.Equal(t, p, got)
		assert.Equal(t, string(p), withTrialEnv(nil, sweep.TrialConfig{Sweep: f})["precision"])
	}
	assert.Equal(t, 1, probes, "the hardware is probed once for the sweep")
}
