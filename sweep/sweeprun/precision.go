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
	p, err := ResolveTrainPrecision(f)
	return p.Precision, err
}

// ResolvedPrecision is a training precision with what led to it here.
type ResolvedPrecision struct {
	Precision amp.Precision
	// Why is auto's reason, or "as asked".
	Why string
	// Emulated is non-empty when Precision has no hardware support on
	// this machine (amp.Emulated): a warning, not an error.
	Emulated string
}

// ResolveTrainPrecision is TrainPrecision with its reasons, for the log.
func ResolveTrainPrecision(f *sweep.File) (ResolvedPrecision, error) {
	device, err := torchrt.ParseDevice(f.Device)
	if err != nil {
		return ResolvedPrecision{}, err
	}
	h := amp.Detect(device)
	p, why := amp.Resolve(cmp.Or(f.Train.Precision, amp.FP32), device, h)
	if err := amp.Check(p, device); err != nil {
		return ResolvedPrecision{}, fmt.Errorf("train.precision: %w", err)
	}
	return ResolvedPrecision{Precision: p, Why: why, Emulated: amp.Emulated(p, device, h)}, nil
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
