// Package torchbatch turns the loader's Go-side batches into libtorch
// tensors. It is the only part of data that needs libtorch; call it on the
// goroutine that does the torch work (locked to its OS thread), while the
// loader's workers keep preparing the next batches.
package torchbatch

import (
	"context"
	"fmt"
	"iter"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/data"
)

// Tensors returns the batch's images as an N×C×H×W float32 tensor with
// values in [0,1] and its labels as an N int64 tensor, both on device.
func Tensors(b *data.Batch, device gotch.Device) (images, labels *ts.Tensor, err error) {
	if b == nil || b.N <= 0 {
		return nil, nil, fmt.Errorf("batch to tensors: empty batch")
	}
	shape := []int64{int64(b.N), int64(b.C), int64(b.H), int64(b.W)}
	if len(b.Images) != b.N*b.C*b.H*b.W || len(b.Labels) != b.N {
		return nil, nil, fmt.Errorf("batch to tensors: %d image values and %d labels do not fit shape %v", len(b.Images), len(b.Labels), shape)
	}
	// Viewing the slices as bytes lets gotch copy them in one go instead of
	// encoding value by value through reflection.
	images, err = ts.OfDataSize(bytesOf(b.Images), shape, gotch.Float)
	if err != nil {
		return nil, nil, fmt.Errorf("batch %d images to tensor: %w", b.Index, err)
	}
	labels, err = ts.OfDataSize(bytesOf(b.Labels), []int64{int64(b.N)}, gotch.Int64)
	if err != nil {
		images.Drop()
		return nil, nil, fmt.Errorf("batch %d labels to tensor: %w", b.Index, err)
	}
	if device == gotch.CPU {
		return images, labels, nil
	}
	if images, err = images.To(device, true); err != nil {
		labels.Drop()
		return nil, nil, fmt.Errorf("batch %d images to %v: %w", b.Index, device, err)
	}
	if labels, err = labels.To(device, true); err != nil {
		images.Drop()
		return nil, nil, fmt.Errorf("batch %d labels to %v: %w", b.Index, device, err)
	}
	return images, labels, nil
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
