// Package torchbatch turns the loader's Go-side batches into libtorch
// tensors. It is the only part of data that needs libtorch; call it on the
// goroutine that does the torch work (locked to its OS thread), while the
// loader's workers keep preparing the next batches.
package torchbatch

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/data"
)

// Tensors returns the batch's images as an N×C×H×W float32 tensor with
// values in [0,1] and its labels as an N int64 tensor, both on device.
func Tensors(b *data.Batch, device gotch.Device) (images, labels *ts.Tensor, err error) {
	return Convert(b, device, nil)
}

// Normalize maps each channel c of images in [0,1] to (x - Mean[c]) /
// Std[c], as torchvision's Normalize does.
type Normalize struct{ Mean, Std []float64 }

// ImageNet is the usual normalisation of ImageNet-trained networks.
var ImageNet = &Normalize{Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}}

// Convert is Tensors with an optional normalisation. A byte batch
// (Batch.Pixels) travels as bytes, to the device too, and libtorch turns it
// into floats there: Go copies a quarter of the memory.
func Convert(b *data.Batch, device gotch.Device, norm *Normalize) (images, labels *ts.Tensor, err error) {
	if b == nil || b.N <= 0 {
		return nil, nil, fmt.Errorf("batch to tensors: empty batch")
	}
	shape := []int64{int64(b.N), int64(b.C), int64(b.H), int64(b.W)}
	values := len(b.Images)
	if b.Pixels != nil {
		values = len(b.Pixels)
	}
	if values != b.N*b.C*b.H*b.W || len(b.Labels) != b.N {
		return nil, nil, fmt.Errorf("batch to tensors: %d image values and %d labels do not fit shape %v", values, len(b.Labels), shape)
	}
	if norm != nil && (len(norm.Mean) != b.C || len(norm.Std) != b.C) {
		return nil, nil, fmt.Errorf("batch to tensors: normalisation has %d means and %d stds for %d channels", len(norm.Mean), len(norm.Std), b.C)
	}
	labels, err = ts.OfDataSize(bytesOf(b.Labels), []int64{int64(b.N)}, gotch.Int64)
	if err != nil {
		return nil, nil, fmt.Errorf("batch %d labels to tensor: %w", b.Index, err)
	}
	if device != gotch.CPU {
		if labels, err = labels.To(device, true); err != nil {
			return nil, nil, fmt.Errorf("batch %d labels to %v: %w", b.Index, device, err)
		}
	}
	if b.Pixels != nil {
		images, err = pixelsToFloat(b, shape, device, norm)
	} else {
		images, err = floatImages(b, shape, device, norm)
	}
	if err != nil {
		labels.Drop()
		return nil, nil, fmt.Errorf("batch %d images to tensor: %w", b.Index, err)
	}
	return images, labels, nil
}

func floatImages(b *data.Batch, shape []int64, device gotch.Device, norm *Normalize) (*ts.Tensor, error) {
	// Viewing the slice as bytes lets gotch copy it in one go instead of
	// encoding value by value through reflection.
	x, err := ts.OfDataSize(bytesOf(b.Images), shape, gotch.Float)
	if err != nil {
		return nil, err
	}
	if device != gotch.CPU {
		if x, err = x.To(device, true); err != nil {
			return nil, err
		}
	}
	if norm == nil {
		return x, nil
	}
	scale, shift := affine(norm, 1)
	return x, applyAffine(x, scale, shift, b.C, device)
}

func pixelsToFloat(b *data.Batch, shape []int64, device gotch.Device, norm *Normalize) (*ts.Tensor, error) {
	raw, err := ts.OfDataSize(b.Pixels, shape, gotch.Uint8)
	if err != nil {
		return nil, err
	}
	if device != gotch.CPU {
		if raw, err = raw.To(device, true); err != nil {
			return nil, err
		}
	}
	x, err := raw.Totype(gotch.Float, true)
	if err != nil {
		return nil, err
	}
	if norm == nil {
		norm = &Normalize{Mean: make([]float64, b.C), Std: ones(b.C)}
	}
	scale, shift := affine(norm, 255)
	return x, applyAffine(x, scale, shift, b.C, device)
}

// affine turns (x/unit - mean)/std into x·scale + shift per channel.
func affine(n *Normalize, unit float64) (scale, shift []float32) {
	for c := range n.Mean {
		scale = append(scale, float32(1/(unit*n.Std[c])))
		shift = append(shift, float32(-n.Mean[c]/n.Std[c]))
	}
	return scale, shift
}

// applyAffine multiplies and shifts x (N×C×H×W) in place, channel-wise.
func applyAffine(x *ts.Tensor, scale, shift []float32, c int, device gotch.Device) error {
	for _, op := range []struct {
		vals  []float32
		apply func(*ts.Tensor) error
	}{{scale, x.Mul_}, {shift, x.Add_}} {
		if !slices.ContainsFunc(op.vals, func(v float32) bool { return v != 0 }) {
			continue // adding zeros
		}
		t, err := ts.OfDataSize(bytesOf(op.vals), []int64{1, int64(c), 1, 1}, gotch.Float)
		if err == nil && device != gotch.CPU {
			t, err = t.To(device, true)
		}
		if err == nil {
			err = op.apply(t)
			t.Drop()
		}
		if err != nil {
			x.Drop()
			return err
		}
	}
	return nil
}

func ones(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// bytesOf views a non-empty slice of fixed-size numbers as its bytes in
// native byte order, which is what libtorch expects.
func bytesOf[T float32 | int64](xs []T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&xs[0])), len(xs)*int(unsafe.Sizeof(xs[0])))
}

// Stream turns an epoch of l's batches into tensors on device one batch at
// a time, as wrap(images, labels) values. The tensors are dropped when the
// consumer's turn ends, so it must not keep them; an error ends the stream.
func Stream[B any](ctx context.Context, l *data.Loader, device gotch.Device, wrap func(images, labels *ts.Tensor) B) iter.Seq2[B, error] {
	return func(yield func(B, error) bool) {
		var zero B
		for b, err := range l.Batches(ctx, 0) {
			if err != nil {
				yield(zero, err)
				return
			}
			x, y, err := Tensors(b, device)
			if err != nil {
				yield(zero, err)
				return
			}
			more := yield(wrap(x, y), nil)
			_ = x.Drop()
			_ = y.Drop()
			if !more {
				return
			}
		}
	}
}
