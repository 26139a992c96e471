package sweeprun

import (
	"cmp"
	"fmt"
	"maps"

	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/sweep"
)

// TrainPrecision is the precision f's trials train at on this machine:
// train.precision with auto resolved for the sweep's device (evaluations
// stay fp32).
func TrainPrecision(f *sweep.File) (amp.Precision, error) {
	p, _, err := ResolveTrainPrecision(f)
	return p, err
}

// ResolveTrainPrecision is TrainPrecision with auto's reason ("as asked"
// for a concrete precision), for the log.
func ResolveTrainPrecision(f *sweep.File) (p amp.Precision, why string, err error) {
	device, err := torchrt.ParseDevice(f.Device)
	if err != nil {
		return "", "", err
	}
	p, why = amp.Resolve(cmp.Or(f.Train.Precision, amp.FP32), device, amp.Detect(device))
	if err := amp.Check(p, device); err != nil {
		return "", "", fmt.Errorf("train.precision: %w", err)
	}
	return p, why, nil
}

// withTrialEnv is the worker's environment plus what the trial ran with:
// its training precision (auto resolved) and, always fp32, its
// evaluations'.
func withTrialEnv(env map[string]string, cfg sweep.TrialConfig) map[string]string {
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
