package model

import (
	"fmt"
	"io"
	"reflect"
	"sort"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/pickle"
	"github.com/sugarme/gotch/ts"
)

// stateDictWrappers are the keys under which training scripts commonly
// nest the state dict in a torch.save'd checkpoint (RobArch saves
// {"epoch", "state_dict", "best_prec1", "optimizer"}).
var stateDictWrappers = []string{"state_dict", "model", "model_state_dict", "net", "module"}

// ReadPyTorch reads a state dict from a file written by torch.save, without
// Python: a plain state dict, or one nested under "state_dict", "model",
// "model_state_dict", "net" or "module". Tensors come back on the CPU,
// with their names as stored (LoadStateDict strips "module." prefixes).
// The caller owns the tensors.
func ReadPyTorch(path string) (_ map[string]*ts.Tensor, err error) {
	// gotch's unpickler indexes and asserts types without checking them,
	// so a malformed file panics inside it; that is the file's fault.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("read %s: not a readable torch.save file (corrupt or truncated?): %v", path, r)
		}
	}()
	obj, err := pickle.LoadWithUnpickler(path, func(r io.Reader) pickle.Unpickler { return pickle.NewUnpickler(r) })
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	entries, err := dictEntries(obj)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !allTensors(entries) {
		var inner map[string]any
		for _, key := range stateDictWrappers {
			if v, ok := entries[key]; ok {
				if d, err := dictEntries(v); err == nil && allTensors(d) {
					inner = d
					break
				}
			}
		}
		if inner == nil {
			return nil, fmt.Errorf("read %s: no state dict found: the file holds a dict with keys %v and none of %v is a dict of tensors",
				path, sortedKeys(entries), stateDictWrappers)
		}
		entries = inner
	}
	out := make(map[string]*ts.Tensor, len(entries))
	for name, v := range entries {
		t, err := storageTensor(v.(*pickle.StorageTensor))
		if err != nil {
			for _, o := range out {
				drop(o)
			}
			return nil, fmt.Errorf("read %s: tensor %s: %w", path, name, err)
		}
		out[name] = t
	}
	return out, nil
}

// dictEntries turns a pickled dict or OrderedDict with string keys into a
// Go map.
func dictEntries(obj any) (map[string]any, error) {
	out := map[string]any{}
	switch d := obj.(type) {
	case *pickle.Dict:
		for _, e := range *d {
			k, ok := e.Key.(string)
			if !ok {
				return nil, fmt.Errorf("dict key %v is not a string", e.Key)
			}
			out[k] = e.Value
		}
	case *pickle.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*pickle.OrderedDictEntry)
			k, ok := entry.Key.(string)
			if !ok {
				return nil, fmt.Errorf("dict key %v is not a string", entry.Key)
			}
			out[k] = entry.Value
		}
	default:
		return nil, fmt.Errorf("expected a dict, found %v", reflect.TypeOf(obj))
	}
	return out, nil
}

func allTensors(d map[string]any) bool {
	if len(d) == 0 {
		return false
	}
	for _, v := range d {
		if _, ok := v.(*pickle.StorageTensor); !ok {
			return false
		}
	}
	return true
}

func sortedKeys(d map[string]any) []string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// storageTensor rebuilds a tensor from its pickled storage, size, stride
// and offset, on the CPU whatever device it was saved from.
func storageTensor(sx *pickle.StorageTensor) (*ts.Tensor, error) {
	data := sx.Source.GetData()
	dtype := sx.Source.DType()
	n := reflect.ValueOf(data).Len()
	// A state dict's tensor is a view of its own storage or of a larger
	// shared one, never an expansion of fewer elements: refusing more
	// elements than the storage holds keeps a corrupt size from making
	// libtorch fill gigabytes (FuzzReadPyTorch stalled on such files).
	numel := int64(1)
	for _, d := range sx.Size {
		if d < 0 {
			return nil, fmt.Errorf("size %v has a negative dimension", sx.Size)
		}
		if d > 0 && numel > int64(n)/d {
			return nil, fmt.Errorf("size %v has more elements than its storage's %d", sx.Size, n)
		}
		numel *= d
	}
	if numel == 0 {
		return ts.Zeros(sx.Size, dtype, gotch.CPU)
	}
	if len(sx.Size) == 0 { // a 0-dim tensor: one element at the offset
		if sx.StorageOffset < 0 || sx.StorageOffset >= int64(n) {
			return nil, fmt.Errorf("storage offset %d outside %d elements", sx.StorageOffset, n)
		}
		one := reflect.ValueOf(data).Slice(int(sx.StorageOffset), int(sx.StorageOffset)+1).Interface()
		t, err := ts.OfSlice(one, ts.WithDType(dtype))
		if err != nil {
			return nil, err
		}
		return scalar(t)
	}
	t, err := ts.OfSlice(data, ts.WithDType(dtype))
	if err != nil {
		return nil, err
	}
	strided, err := t.AsStrided(sx.Size, sx.Stride, []int64{sx.StorageOffset}, false)
	if err != nil {
		drop(t)
		return nil, err
	}
	c, err := strided.Contiguous(true)
	drop(t)
	return c, err
}
