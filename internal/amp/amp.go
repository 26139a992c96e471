// Package amp is robarch's mixed precision: libtorch's autocast driven from
// Go (through the torchbuild extension, gotch wraps none of it), a network
// wrapper that runs its forward pass in low precision and hands back fp32
// logits, and a dynamic loss scaler for fp16.
//
// Autocast state, its nesting and its cast cache are C++ thread-locals, like
// grad mode: every call here locks the calling goroutine to its OS thread
// for its duration, and callers run torch work on one locked thread anyway
// (torchrt.Worker, train.Run, bench.Run).
//
// Only the network's forward pass runs under autocast. Losses, attack
// perturbations, projections and clamps see fp32 logits and fp32 inputs, so
// an ε-ball is exact whatever the precision, and backward passes run
// outside autocast (PyTorch's advice: backward under autocast is not
// recommended; its ops follow the forward's dtypes). Weights stay fp32 (the
// "master" copy the optimiser updates and checkpoints store); autocast
// casts them per scope and caches the casts until the outermost scope ends.
package amp

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// Precision is the arithmetic a network's forward pass runs in.
type Precision string

// The precisions.
const (
	FP32 Precision = "fp32" // no autocast
	BF16 Precision = "bf16" // autocast to bfloat16 (CPU and CUDA); no loss scaling needed
	FP16 Precision = "fp16" // autocast to float16 with a loss scaler (CUDA only)
	Auto Precision = "auto" // Resolve picks per device
)

// Precisions lists the accepted values.
func Precisions() []Precision { return []Precision{FP32, BF16, FP16, Auto} }

// Parse accepts fp32, bf16, fp16 and auto ("" is fp32; float32, bfloat16
// and float16/half as aliases).
func Parse(s string) (Precision, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "fp32", "float32", "float":
		return FP32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "fp16", "float16", "half":
		return FP16, nil
	case "auto":
		return Auto, nil
	}
	return "", fmt.Errorf("precision %q: allowed values are fp32, bf16, fp16, auto", s)
}

// Low reports whether p runs the forward pass under autocast.
func (p Precision) Low() bool { return p == BF16 || p == FP16 }

// DType is the element type autocast casts to (Float for fp32).
func (p Precision) DType() gotch.DType {
	switch p {
	case BF16:
		return gotch.BFloat16
	case FP16:
		return gotch.Half
	}
	return gotch.Float
}

// Check says whether p can run on device: fp16 autocast needs CUDA
// (libtorch 1.13's CPU autocast knows bfloat16 only) and auto must have
// been resolved first.
func Check(p Precision, device gotch.Device) error {
	switch p {
	case FP32, BF16:
		return nil
	case FP16:
		if !isCUDA(device) {
			return fmt.Errorf("precision fp16: needs a CUDA device (CPU autocast is bfloat16 only); use bf16 on the CPU")
		}
		return nil
	case Auto:
		return fmt.Errorf("precision auto: resolve it for the device first (amp.Resolve)")
	}
	return fmt.Errorf("precision %q: allowed values are fp32, bf16, fp16, auto", p)
}

// isCUDA is d.IsCuda() except for gotch's zero Device, which IsCuda
// calls CUDA and robarch treats as the CPU.
func isCUDA(d gotch.Device) bool { return d.Name == "CUDA" }

// deviceCode is the extension's device number: 0 CPU, 1 CUDA.
func deviceCode(d gotch.Device) int {
	if isCUDA(d) {
		return 1
	}
	return 0
}

// Do runs fn with autocast on for device at precision p; for fp32 it just
// runs fn. Scopes nest; leaving the outermost one clears the cast cache,
// so weights changed between two scopes are cast afresh. The scope is
// closed even when fn panics.
func Do(device gotch.Device, p Precision, fn func() error) (err error) {
	if !p.Low() {
		if p != FP32 && p != "" {
			return Check(p, device)
		}
		return fn()
	}
	if err := Check(p, device); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st, err := libtch.RobarchAutocastEnter(deviceCode(device), int(p.DType()))
	if err != nil {
		return fmt.Errorf("autocast %s on: %w", p, err)
	}
	defer func() {
		if _, xerr := libtch.RobarchAutocastExit(st); xerr != nil && err == nil {
			err = fmt.Errorf("autocast %s off: %w", p, xerr)
		}
	}()
	return fn()
}

// Enabled reports whether autocast is on for device on this OS thread.
func Enabled(device gotch.Device) bool { return libtch.RobarchAutocastEnabled(deviceCode(device)) }

// Depth is the autocast nesting depth on this OS thread (0 outside every scope).
func Depth() int { return libtch.RobarchAutocastDepth() }

// ClearCache drops autocast's cached low-precision weight copies on this
// OS thread. Do clears them on leaving its outermost scope already.
func ClearCache() { libtch.RobarchAutocastClearCache() }

// ErrScalarType is returned by DTypeOf for a type libtorch could not report.
var ErrScalarType = errors.New("amp: tensor element type unknown")

// DTypeOf is t's element type, read without gotch's DType (which panics on
// types it cannot map).
func DTypeOf(t *ts.Tensor) (gotch.DType, error) {
	v := libtch.RobarchScalarType(t.Ctensor())
	if v < 0 {
		return gotch.Invalid, ErrScalarType
	}
	return gotch.DType(v), nil
}
