package model

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/atomicfile"
)

// The safetensors format (github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header mapping each name to its
// dtype, shape and [begin, end) byte offsets into the data that follows,
// plus an optional "__metadata__" string map; then the raw little-endian
// data.

type safeEntry struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets [2]int  `json:"data_offsets"`
}

var safeDTypes = map[string]gotch.DType{"F32": gotch.Float, "F64": gotch.Double, "I64": gotch.Int64, "I32": gotch.Int}

func safeName(d gotch.DType) (string, bool) {
	for k, v := range safeDTypes {
		if v == d {
			return k, true
		}
	}
	return "", false
}

// maxHeader bounds the JSON header of a file we read (the format's own
// limit is 100 MB).
const maxHeader = 100 << 20

// WriteSafetensors writes tensors (float32, float64, int64 or int32) and
// metadata to path atomically (a temporary file renamed into place).
func WriteSafetensors(path string, tensors []Named, metadata map[string]string) error {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	type blob struct {
		vals any
		size int
	}
	blobs := make([]blob, len(tensors))
	offset := 0
	for i, nt := range tensors {
		if _, dup := header[nt.Name]; dup || nt.Name == "__metadata__" {
			return fmt.Errorf("safetensors %s: duplicate or reserved name %q", path, nt.Name)
		}
		vals, dname, shape, err := tensorValues(nt.Tensor)
		if err != nil {
			return fmt.Errorf("safetensors %s: %s: %w", path, nt.Name, err)
		}
		size := valuesBytes(vals)
		header[nt.Name] = safeEntry{DType: dname, Shape: shape, Offsets: [2]int{offset, offset + size}}
		blobs[i] = blob{vals, size}
		offset += size
	}
	h, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	for len(h)%8 != 0 { // the format allows trailing spaces; aligns the data
		h = append(h, ' ')
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if err := binary.Write(w, binary.LittleEndian, uint64(len(h))); err != nil {
			return err
		}
		if _, err := w.Write(h); err != nil {
			return err
		}
		for _, b := range blobs {
			if err := binary.Write(w, binary.LittleEndian, b.vals); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReadSafetensors reads every tensor of a safetensors file (on the CPU)
// and its metadata. The caller owns the tensors.
func ReadSafetensors(path string) (map[string]*ts.Tensor, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors: %w", err)
	}
	tensors, meta, err := decodeSafetensors(data)
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: %w", path, err)
	}
	return tensors, meta, nil
}

// decodeSafetensors is ReadSafetensors on a file's bytes (FuzzReadSafetensors
// calls it on memory).
func decodeSafetensors(data []byte) (map[string]*ts.Tensor, map[string]string, error) {
	fail := func(format string, args ...any) (map[string]*ts.Tensor, map[string]string, error) {
		return nil, nil, fmt.Errorf(format, args...)
	}
	if len(data) < 8 {
		return fail("file too short for a header")
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > maxHeader || n > uint64(len(data)-8) {
		return fail("header length %d exceeds the file", n)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &raw); err != nil {
		return fail("header: %v", err)
	}
	body := data[8+n:]
	var meta map[string]string
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return fail("__metadata__: %v", err)
		}
		delete(raw, "__metadata__")
	}
	out := make(map[string]*ts.Tensor, len(raw))
	release := func() {
		for _, t := range out {
			drop(t)
		}
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		var e safeEntry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			release()
			return fail("%s: %v", name, err)
		}
		t, err := decodeSafe(e, body)
		if err != nil {
			release()
			return fail("%s: %v", name, err)
		}
		out[name] = t
	}
	return out, meta, nil
}

func decodeSafe(e safeEntry, body []byte) (*ts.Tensor, error) {
	dt, ok := safeDTypes[e.DType]
	if !ok {
		return nil, fmt.Errorf("dtype %s: want F32, F64, I64 or I32", e.DType)
	}
	numel := int64(1)
	for _, d := range e.Shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", e.Shape)
		}
		// A product that overflows could pass the size check below as 0
		// (or wrap to a small count) and reach libtorch as a huge shape.
		if d > 0 && numel > math.MaxInt64/8/d {
			return nil, fmt.Errorf("shape %v: too many elements", e.Shape)
		}
		numel *= d
	}
	begin, end := e.Offsets[0], e.Offsets[1]
	if begin < 0 || end < begin || end > len(body) {
		return nil, fmt.Errorf("data offsets [%d, %d) outside the %d data bytes", begin, end, len(body))
	}
	if int64(end-begin) != numel*int64(dt.Size()) {
		return nil, fmt.Errorf("%d bytes for shape %v of %s", end-begin, e.Shape, e.DType)
	}
	b := body[begin:end]
	var vals any
	switch dt {
	case gotch.Float:
		v := make([]float32, numel)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		vals = v
	case gotch.Double:
		v := make([]float64, numel)
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		vals = v
	case gotch.Int64:
		v := make([]int64, numel)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		vals = v
	case gotch.Int:
		v := make([]int32, numel)
		for i := range v {
			v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		vals = v
	}
	if numel == 0 {
		return ts.Zeros(e.Shape, dt, gotch.CPU)
	}
	t, err := ts.OfSlice(vals)
	if err != nil {
		return nil, err
	}
	if len(e.Shape) == 0 {
		return scalar(t)
	}
	return t.Reshape(e.Shape, true)
}

// tensorValues copies a tensor's values to a Go slice (on the CPU,
// contiguous).
func tensorValues(t *ts.Tensor) (vals any, dtype string, shape []int64, err error) {
	dname, ok := safeName(t.DType())
	if !ok {
		return nil, "", nil, fmt.Errorf("dtype %v: want float32, float64, int64 or int32", t.DType())
	}
	if shape, err = t.Size(); err != nil {
		return nil, "", nil, err
	}
	c, err := t.To(gotch.CPU, false)
	if err != nil {
		return nil, "", nil, err
	}
	if c, err = c.Contiguous(true); err != nil {
		return nil, "", nil, err
	}
	defer drop(c)
	numel := c.Numel()
	switch t.DType() {
	case gotch.Float:
		vals = make([]float32, numel)
	case gotch.Double:
		vals = make([]float64, numel)
	case gotch.Int64:
		vals = make([]int64, numel)
	case gotch.Int:
		vals = make([]int32, numel)
	}
	if numel > 0 {
		if err := c.CopyData(vals, numel); err != nil {
			return nil, "", nil, err
		}
	}
	return vals, dname, shape, nil
}

func valuesBytes(vals any) int {
	switch v := vals.(type) {
	case []float32:
		return 4 * len(v)
	case []float64:
		return 8 * len(v)
	case []int64:
		return 8 * len(v)
	case []int32:
		return 4 * len(v)
	}
	return 0
}
