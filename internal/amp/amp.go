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

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/precision"
)

// Precision is the arithmetic a network's forward pass runs in; package
// precision owns it (pure Go, so recipes and sweep files can name one
// without cgo) and amp runs it.
type Precision = precision.Precision

// The precisions, as package precision names them.
const (
	FP32 = precision.FP32
	BF16 = precision.BF16
	FP16 = precision.FP16
	Auto = precision.Auto
)

// Precisions lists the accepted values.
func Precisions() []Precision { return precision.All() }

// Parse is precision.Parse.
func Parse(s string) (Precision, error) { return precision.Parse(s) }

// DType is the element type autocast casts to at p (Float for fp32).
func DType(p Precision) gotch.DType {
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
	st, err := libtch.RobarchAutocastEnter(deviceCode(device), int(DType(p)))
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
