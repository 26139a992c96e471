package model

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/sugarme/gotch/ts"
)

// Named is one entry of a state dict.
type Named struct {
	Name   string
	Tensor *ts.Tensor
}

// StateDict returns the net's state in its naming scheme, in construction
// order: parameters and buffers, plus each batch norm's
// num_batches_tracked (0, as PyTorch's state dicts have it) so that the
// result loads into the PyTorch model with strict=True. Tensors other than
// num_batches_tracked are the live variables: do not drop them.
func (n *Net) StateDict() ([]Named, error) {
	var out []Named
	bn := map[string]bool{}
	for _, name := range n.batchNorms {
		bn[name+".running_var"] = true
	}
	for _, v := range n.vars {
		if !v.Export {
			continue
		}
		out = append(out, Named{v.Name, v.Tensor})
		if bn[v.Name] {
			t, err := ts.OfSlice([]int64{0})
			if err != nil {
				return nil, err
			}
			if t, err = scalar(t); err != nil {
				return nil, err
			}
			out = append(out, Named{strings.TrimSuffix(v.Name, "running_var") + "num_batches_tracked", t})
		}
	}
	return out, nil
}

// scalar turns a one-element tensor into a 0-dim one (gotch's Reshape
// cannot take an empty shape).
func scalar(t *ts.Tensor) (*ts.Tensor, error) { return t.Squeeze(true) }

// MismatchError lists how a state dict differs from a net's: names it
// lacks, names the net does not have, and shape differences. Nothing is
// loaded when it is returned.
type MismatchError struct {
	Missing    []string // expected by the net, absent from the file
	Unexpected []string // in the file, unknown to the net
	Shapes     []string // "name: file [..] vs net [..]"
}

// maxListed bounds how many differences of each kind the message lists.
const maxListed = 8

func (e *MismatchError) Error() string {
	var parts []string
	list := func(what string, xs []string) {
		if len(xs) == 0 {
			return
		}
		shown := xs[:min(len(xs), maxListed)]
		more := ""
		if len(xs) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(xs)-len(shown))
		}
		parts = append(parts, fmt.Sprintf("%d %s: %s%s", len(xs), what, strings.Join(shown, ", "), more))
	}
	list("missing", e.Missing)
	list("unexpected", e.Unexpected)
	list("shape mismatches", e.Shapes)
	return "state dict does not match the model: " + strings.Join(parts, "; ")
}

// normalizeKey strips DataParallel's "module." prefix.
func normalizeKey(k string) string {
	for strings.HasPrefix(k, "module.") {
		k = strings.TrimPrefix(k, "module.")
	}
	return k
}

// LoadStateDict copies the tensors of sd into the net's variables. Keys
// may carry DataParallel's "module." prefix; num_batches_tracked entries
// are ignored; the input mean/std buffers are optional (when present they
// replace the spec's values). Any missing or unexpected name or any shape
// difference is a *MismatchError and nothing is loaded. Values are
// converted to the variable's dtype and device. sd's tensors are not
// dropped.
func (n *Net) LoadStateDict(sd map[string]*ts.Tensor) error {
	byName := make(map[string]*ts.Tensor, len(sd))
	for k, t := range sd {
		k = normalizeKey(k)
		if strings.HasSuffix(k, ".num_batches_tracked") || n.names.ignored(k) {
			continue
		}
		if _, dup := byName[k]; dup {
			return fmt.Errorf("state dict has %q twice (with and without a module. prefix)", k)
		}
		byName[k] = t
	}
	optional := map[string]bool{}
	if n.mean != nil {
		optional[n.vars[n.byName["normalization.mean"]].Name] = true
		optional[n.vars[n.byName["normalization.std"]].Name] = true
	}
	var e MismatchError
	for _, v := range n.vars {
		t, ok := byName[v.Name]
		if !ok {
			if !optional[v.Name] {
				e.Missing = append(e.Missing, v.Name)
			}
			continue
		}
		want, err := v.Tensor.Size()
		if err != nil {
			return err
		}
		got, err := t.Size()
		if err != nil {
			return fmt.Errorf("state dict %s: %w", v.Name, err)
		}
		if !slices.Equal(want, got) {
			e.Shapes = append(e.Shapes, fmt.Sprintf("%s: file %v vs model %v", v.Name, got, want))
		}
	}
	for k := range byName {
		if _, ok := n.byName[k]; !ok {
			e.Unexpected = append(e.Unexpected, k)
		}
	}
	slices.Sort(e.Unexpected)
	if len(e.Missing)+len(e.Unexpected)+len(e.Shapes) > 0 {
		return &e
	}
	// Grad mode is thread-local in libtorch: keep NoGrad and the copies on
	// one OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var err error
	ts.NoGrad(func() {
		for _, v := range n.vars {
			t, ok := byName[v.Name]
			if !ok {
				continue
			}
			if err = copyInto(v.Tensor, t); err != nil {
				err = fmt.Errorf("load %s: %w", v.Name, err)
				return
			}
		}
	})
	return err
}

// copyInto copies src's values into dst (same shape, checked by the
// caller), converting dtype and device first so Copy_ cannot fail.
func copyInto(dst, src *ts.Tensor) error {
	dev, err := dst.Device()
	if err != nil {
		return err
	}
	c, err := src.Totype(dst.DType(), false)
	if err != nil {
		return err
	}
	if c, err = c.To(dev, true); err != nil {
		return err
	}
	dst.Copy_(c)
	return c.Drop()
}
