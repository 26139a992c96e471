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
	// AutoFormat picks what was measured fastest for the net (see
	// Net.SetMemoryFormat).
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

// resolve turns auto into a format for n on dev (SetMemoryFormat says
// how); other formats come back unchanged.
func (n *Net) resolve(f MemoryFormat, dev gotch.Device) MemoryFormat {
	if f != AutoFormat && f != "" {
		return f
	}
	if dev.IsCuda() || n.hasGroupNorm() {
		return Contiguous
	}
	aligned := func(c conv, stem bool) bool {
		shape, err := c.w.Size()
		return err == nil && shape[0]%8 == 0 && (shape[1]%8 == 0 || (stem && shape[1] <= 4))
	}
	if !aligned(n.stemConv, true) {
		return Contiguous
	}
	for _, st := range n.stages {
		for _, b := range st.blocks {
			for _, c := range b.convs {
				if !aligned(c, false) {
					return Contiguous
				}
			}
			if b.proj != nil && !aligned(*b.proj, false) {
				return Contiguous
			}
		}
	}
	return ChannelsLast
}

func (n *Net) hasGroupNorm() bool {
	isGN := func(nm norm) bool { return nm.kind == arch.GroupNorm }
	if (n.stemNorm != nil && isGN(*n.stemNorm)) || (n.finalNorm != nil && isGN(*n.finalNorm)) {
		return true
	}
	for _, st := range n.stages {
		for _, b := range st.blocks {
			if slices.ContainsFunc(b.norms, isGN) || isGN(b.projNorm) {
				return true
			}
		}
	}
	return false
}

// SetMemoryFormat rewrites the net's 4-D variables (convolution weights)
// in format f, in place: values, names and autograd identity stay, so
// optimisers and checkpoints built on the net keep working. Outputs and gradients keep their NCHW shapes; values
// match the contiguous net's up to rounding (oneDNN sums in another order).
//
// Auto is channels-last on the CPU when every convolution's output
// channels and input channels per group are multiples of 8 (the stem's 1
// or 3 input channels and SE's pooled 1×1 convolutions excepted) and the
// net has no group norm; otherwise, and on CUDA, contiguous. Measured on
// this project's 2-core AVX-512 machine, robarch's micro-like training
// step (images/s, contiguous → channels-last): widths 16-32-64 (micro)
// 505 → 686, 24-48-96 297 → 364, but 12-24-48 802 → 605, 20-40-80 302 →
// 277, 12-22-50 711 → 328; with group norms (libtorch 1.13's CPU kernel is slow
// on channels-last activations) 751 → 251. CUDA was not measured.
func (n *Net) SetMemoryFormat(f MemoryFormat) error {
	if _, err := ParseMemoryFormat(string(f)); err != nil {
		return fmt.Errorf("set memory format: %w", err)
	}
	var four []*ts.Tensor
	dev := gotch.CPU
	for _, v := range n.vars {
		if v.Tensor.Dim() == 4 {
			four = append(four, v.Tensor)
			d, err := v.Tensor.Device()
			if err != nil {
				return fmt.Errorf("set memory format: %s: %w", v.Name, err)
			}
			dev = d
		}
	}
	f = n.resolve(f, dev)
	if err := setFormat(four, f); err != nil {
		return fmt.Errorf("set memory format %s: %w", f, err)
	}
	n.format = f
	for _, st := range n.stages {
		for _, b := range st.blocks {
			b.channelsLast = f == ChannelsLast
		}
	}
	return nil
}

// MemoryFormat is the format SetMemoryFormat last set (contiguous as built).
func (n *Net) MemoryFormat() MemoryFormat {
	if n.format == "" {
		return Contiguous
	}
	return n.format
}
