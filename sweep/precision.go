package sweep

import (
	"cmp"
	"fmt"
	"maps"

	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchrt"
)

// TrainPrecision is the precision f's trials train at on this machine:
// train.precision with auto resolved for the sweep's device (evaluations
// stay fp32).
func TrainPrecision(f *File) (amp.Precision, error) {
	device, err := torchrt.ParseDevice(f.Device)
	if err != nil {
		return "", err
	}
	p := cmp.Or(f.Train.Precision, amp.FP32)
	p, _ = amp.Resolve(p, device, amp.Detect(device))
	if err := amp.Check(p, device); err != nil {
		return "", fmt.Errorf("train.precision: %w", err)
	}
	return p, nil
}

// normalPrecision writes aliases (bfloat16, half) as their names and fp32
// as recipe.Recipe does (unset), so that equal sweeps compare equal; an
// unknown value is kept for checkPrecision to report.
func normalPrecision(p amp.Precision) amp.Precision {
	got, err := amp.Parse(string(p))
	switch {
	case err != nil:
		return p
	case got == amp.FP32:
		return ""
	}
	return got
}

func checkPrecision(p amp.Precision) error {
	_, err := amp.Parse(string(p))
	return err
}

// withTrialEnv is the worker's environment plus what the trial ran with:
// its training precision (auto resolved) and, always fp32, its
// evaluations'.
func withTrialEnv(env map[string]string, cfg TrialConfig) map[string]string {
	out := maps.Clone(env)
	if out == nil {
		out = map[string]string{}
	}
	if p, err := TrainPrecision(cfg.Sweep); err == nil {
		out["precision"] = string(p)
	}
	out["eval_precision"] = string(amp.FP32)
	return out
}
