// Package precision names the arithmetic a network's forward pass runs in.
// It is pure Go, apart from package amp (which runs autocast through
// libtorch), so that recipes and sweep files, which name a precision, can
// be read and validated without cgo.
package precision

import (
	"fmt"
	"strings"
)

// Precision is the arithmetic a network's forward pass runs in.
type Precision string

// The precisions.
const (
	FP32 Precision = "fp32" // no autocast
	BF16 Precision = "bf16" // autocast to bfloat16 (CPU and CUDA); no loss scaling needed
	FP16 Precision = "fp16" // autocast to float16 with a loss scaler (CUDA only)
	Auto Precision = "auto" // amp.Resolve picks per device
)

// All lists the accepted values.
func All() []Precision { return []Precision{FP32, BF16, FP16, Auto} }

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
