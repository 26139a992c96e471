package sweeprun

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"sync"

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
// for a concrete precision), for the log. The answer is worked out once
// per process for each device and precision asked, so once per sweep (a
// sweep fixes both): the command's log line, Preflight, every trial and
// the precision recorded with it all get that one resolution, and a trial
// is recorded with the precision it trained at.
func ResolveTrainPrecision(f *sweep.File) (p amp.Precision, why string, err error) {
	key := trainPrecisionKey{f.Device, f.Train.Precision}
	resolvedMu.Lock()
	defer resolvedMu.Unlock()
	r, ok := resolved[key]
	if !ok {
		r.p, r.why, r.err = resolveTrainPrecision(key)
		resolved[key] = r
	}
	return r.p, r.why, r.err
}

// LogTrainPrecision logs what f's trials train in on this machine and why
// (train.precision auto differs between machines), with a warning when
// that precision has no hardware support here. It says nothing when the
// device or precision is bad: Preflight reports those.
func LogTrainPrecision(f *sweep.File) {
	device, err := torchrt.ParseDevice(f.Device)
	if err != nil {
		return
	}
	p, why, err := ResolveTrainPrecision(f)
	if err != nil {
		return
	}
	slog.Info("training precision", "precision", p, "why", why)
	amp.WarnIfEmulated(p, device)
}

type trainPrecisionKey struct {
	device string
	asked  amp.Precision
}

type trainPrecision struct {
	p   amp.Precision
	why string
	err error
}

var (
	resolvedMu sync.Mutex
	resolved   = map[trainPrecisionKey]trainPrecision{}
	// detect is amp.Detect; a test counts its calls.
	detect = amp.Detect
)

func resolveTrainPrecision(k trainPrecisionKey) (amp.Precision, string, error) {
	device, err := torchrt.ParseDevice(k.device)
	if err != nil {
		return "", "", err
	}
	p, why := amp.Resolve(cmp.Or(k.asked, amp.FP32), device, detect(device))
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
