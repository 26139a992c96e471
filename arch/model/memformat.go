package model

import (
	"fmt"
	"slices"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
)

// MemoryFormat is how a Net lays out its 4-D weights in memory, and so how
// oneDNN and cuDNN run its convolutions (activations follow the weights).
type MemoryFormat string

const (
	// Contiguous is NCHW, PyTorch's default.
	Contiguous MemoryFormat = "contiguous"
	// ChannelsLast is NHWC strides on the same shapes. On CPU oneDNN then
	// convolves without reordering operands on every call; see
	// docs/gotch.md for the figures.
	ChannelsLast MemoryFormat = "channels-last"
	// AutoFormat picks what was measured fastest (MemoryFormat.Resolve).
	AutoFormat MemoryFormat = "auto"
)

// MemoryFormats lists the accepted values, for flags and errors.
var MemoryFormats = []MemoryFormat{AutoFormat, Contiguous, ChannelsLast}

// ParseMemoryFormat checks a user's value; "" means auto.
func ParseMemoryFormat(s string) (MemoryFormat, error) {
	if s == "" {
		return AutoFormat, nil
	}
	f := MemoryFormat(s)
	if !slices.Contains(MemoryFormats, f) {
		return "", fmt.Errorf("memory format %q: want one of %v", s, MemoryFormats)
	}
	return f, nil
}

// Resolve turns auto into a format for spec on dev: channels-last on the
// CPU, except for nets with group norms, whose CPU kernel in libtorch 1.13
// is ~3× slower on channels-last activations (a micro training step with
// group norms: 251 images/s against 751); contiguous on CUDA, where it was
// not measured. Other formats come back unchanged.
func (f MemoryFormat) Resolve(spec arch.Spec, dev gotch.Device) MemoryFormat {
	if f != AutoFormat && f != "" {
		return f
	}
	b := spec.WithDefaults().Block
	if dev.IsCuda() || slices.Contains(b.Norms, arch.GroupNorm) || b.ShortcutNorm == arch.GroupNorm {
		return Contiguous
	}
	return ChannelsLast
}

// SetMemoryFormat rewrites the net's 4-D variables (convolution weights)
// in format f (auto resolved for the net and its device), in place: values, names
// and autograd identity stay, so optimisers and checkpoints built on the
// net keep working. Outputs and gradients keep their NCHW shapes; values
// match the contiguous net's up to rounding (oneDNN sums in another order).
func (n *Net) SetMemoryFormat(f MemoryFormat) error {
	if _, err := ParseMemoryFormat(string(f)); err != nil {
		return fmt.Errorf("set memory format: %w", err)
	}
	var four []*ts.Tensor
	dev := gotch.CPU
	for _, v := range n.vars {
		if v.Tensor.Dim() == 4 {
			four = append(four, v.Tensor)
			dev = v.Tensor.MustDevice()
		}
	}
	f = f.Resolve(n.spec, dev)
	if err := setFormat(four, f); err != nil {
		return fmt.Errorf("set memory format %s: %w", f, err)
	}
	n.format = f
	return nil
}

// MemoryFormat is the format SetMemoryFormat last set (contiguous as built).
func (n *Net) MemoryFormat() MemoryFormat {
	if n.format == "" {
		return Contiguous
	}
	return n.format
}
