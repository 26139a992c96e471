package train

import (
	"fmt"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// Tensor helpers that avoid two leaks of gotch v0.9.1: its generated
// in-place ops (Add_, Zero_, …) replace the Go tensor's C handle with a new
// one and never free the old, which keeps the storage alive; and
// Float64Values leaves a converted copy to the garbage collector. Training
// loops here therefore compute out of place, drop what they make, and write
// into long-lived tensors only through copyInto.

// copyInto copies src into dst in place (broadcasting src), without the
// handle leak of gotch's generated in-place ops and returning an error
// where gotch's Copy_ would exit the process.
func copyInto(dst, src *ts.Tensor) error {
	lib.AtCopy_(lib.Ctensor(dst.Ctensor()), lib.Ctensor(src.Ctensor()))
	if err := ts.TorchErr(); err != nil {
		return fmt.Errorf("copy into tensor: %w", err)
	}
	return nil
}

// item returns the value of a one-element tensor as float64.
func item(t *ts.Tensor) (float64, error) {
	flat, err := t.View([]int64{1}, false)
	if err != nil {
		return 0, fmt.Errorf("read scalar: %w", err)
	}
	defer flat.Drop()
	v, err := flat.Float64Value([]int64{0})
	if err != nil {
		return 0, fmt.Errorf("read scalar: %w", err)
	}
	return v, nil
}

// float32s copies a float tensor's values to Go (for tests and
// checkpoints comparisons); it converts on a temporary it drops.
func float32s(t *ts.Tensor) ([]float32, error) {
	c, err := t.ToDevice(gotch.CPU, gotch.Float, false, true, false)
	if err != nil {
		return nil, fmt.Errorf("tensor to CPU float: %w", err)
	}
	defer c.Drop()
	c2, err := c.Contiguous(false)
	if err != nil {
		return nil, err
	}
	defer c2.Drop()
	n := c2.Numel()
	out := make([]float32, n)
	if n == 0 {
		return out, nil
	}
	if err := c2.CopyData(out, n); err != nil {
		return nil, fmt.Errorf("copy tensor values: %w", err)
	}
	return out, nil
}

// countCorrect returns how many rows of logits have their largest value at
// the label's position.
func countCorrect(logits, labels *ts.Tensor) (int64, error) {
	pred, err := logits.Argmax([]int64{1}, false, false)
	if err != nil {
		return 0, fmt.Errorf("argmax: %w", err)
	}
	eq, err := pred.EqTensor(labels, true)
	if err != nil {
		return 0, fmt.Errorf("compare predictions: %w", err)
	}
	sum, err := eq.Sum(gotch.Int64, true)
	if err != nil {
		return 0, fmt.Errorf("count correct: %w", err)
	}
	v, err := item(sum)
	sum.Drop()
	return int64(v), err
}

// drop frees tensors now rather than at some later garbage collection;
// nil entries are skipped and Drop is idempotent.
func drop(xs ...*ts.Tensor) {
	for _, x := range xs {
		if x != nil {
			_ = x.Drop()
		}
	}
}

// scalars holds the C scalars one computation needs, to free them at once.
type scalars []*ts.Scalar

func (s *scalars) float(v float64) *ts.Scalar {
	sc := ts.FloatScalar(v)
	*s = append(*s, sc)
	return sc
}

func (s *scalars) drop() {
	for _, sc := range *s {
		_ = sc.Drop()
	}
	*s = (*s)[:0]
}

// sameStorage reports whether two tensors are views of one C tensor
// handle; used to match VarStore entries to their trainable pointers.
func sameHandle(a, b *ts.Tensor) bool {
	return unsafe.Pointer(a.Ctensor()) == unsafe.Pointer(b.Ctensor())
}
