package model

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// The fixtures in testdata/pytorch are written by make_fixtures.py with
// Debian's PyTorch 1.13; these tests need no Python.

type wantTensor struct {
	shape []int64
	dtype gotch.DType
	vals  []float64
}

func checkTensors(t *testing.T, got map[string]*ts.Tensor, want map[string]wantTensor) {
	t.Helper()
	names := make([]string, 0, len(got))
	for k := range got {
		names = append(names, k)
	}
	wantNames := make([]string, 0, len(want))
	for k := range want {
		wantNames = append(wantNames, k)
	}
	assert.ElementsMatch(t, wantNames, names)
	for name, w := range want {
		x, ok := got[name]
		if !ok {
			continue
		}
		shape, err := x.Size()
		require.NoError(t, err)
		assert.Equal(t, w.shape, shape, name)
		assert.Equal(t, w.dtype, x.DType(), name)
		vals := []float64{}
		if x.Numel() > 0 {
			vals = x.Float64Values()
		}
		assert.Equal(t, w.vals, vals, name)
	}
}

func TestReadPyTorchLoadsRealCheckpoints(t *testing.T) {
	runtime.LockOSThread() // gotch's last error is thread-local
	ramp := []float64{-1, 0, 1, 2}
	dtypes := map[string]wantTensor{
		"f32":                    {[]int64{2, 3}, gotch.Float, []float64{0, 1, 2, 3, 4, 5}},
		"f64":                    {[]int64{4}, gotch.Double, ramp},
		"f16":                    {[]int64{4}, gotch.Half, ramp},
		"bf16":                   {[]int64{4}, gotch.BFloat16, ramp},
		"i64":                    {[]int64{4}, gotch.Int64, ramp},
		"i32":                    {[]int64{4}, gotch.Int, ramp},
		"i16":                    {[]int64{4}, gotch.Int16, ramp},
		"i8":                     {[]int64{4}, gotch.Int8, ramp},
		"u8":                     {[]int64{4}, gotch.Uint8, []float64{0, 1, 2, 3}},
		"bool":                   {[]int64{3}, gotch.Bool, []float64{1, 0, 1}},
		"scalar":                 {[]int64{}, gotch.Float, []float64{7.5}},
		"transposed":             {[]int64{3, 2}, gotch.Float, []float64{0, 3, 1, 4, 2, 5}},
		"view":                   {[]int64{3}, gotch.Float, []float64{3, 4, 5}},
		"param":                  {[]int64{2}, gotch.Float, []float64{0.25, 0.25}},
		"empty":                  {[]int64{0, 4}, gotch.Float, []float64{}},
		"bn.num_batches_tracked": {[]int64{}, gotch.Int64, []float64{3}},
	}
	small := map[string]wantTensor{
		"w": {[]int64{2, 3}, gotch.Float, []float64{0, 1, 2, 3, 4, 5}},
		"b": {[]int64{3}, gotch.Double, []float64{0, 0, 0}},
		"n": {[]int64{}, gotch.Int64, []float64{5}},
	}
	seeds := filepath.Join("testdata", "fuzz", "FuzzReadPyTorch")
	tests := []struct {
		name string
		data []byte
		want map[string]wantTensor
	}{
		{"zip format, every dtype", readFile(t, filepath.Join("testdata", "pytorch", "dtypes.pt")), dtypes},
		{"legacy format, every dtype", readFile(t, filepath.Join("testdata", "pytorch", "dtypes-legacy.pt")), dtypes},
		{"fuzz seed: plain", corpusBytes(t, filepath.Join(seeds, "seed-plain")), small},
		{"fuzz seed: legacy", corpusBytes(t, filepath.Join(seeds, "seed-legacy")), small},
		{"fuzz seed: nested under state_dict", corpusBytes(t, filepath.Join(seeds, "seed-wrapped")),
			map[string]wantTensor{"module.w": {[]int64{2}, gotch.Float, []float64{1, 1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadPyTorch(writeTemp(t, tt.data))
			require.NoError(t, err)
			defer freeAll(got)
			checkTensors(t, got, tt.want)
		})
	}
}

// A pickle that names a global outside the state-dict allowlist is
// refused before anything is called or read, whichever opcode names it
// and whichever format holds it.
func TestReadPyTorchRefusesGlobalsOutsideTheAllowlist(t *testing.T) {
	tests := []struct {
		name, global string
		data         []byte
	}{
		{"torch.save zip calling os.system (fixture)", "os.system", readFile(t, filepath.Join("testdata", "pytorch", "os-system.pt"))},
		{"GLOBAL posix.system in a zip", "posix.system", zipPickle(t, "\x80\x02cposix\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.", nil)},
		{"STACK_GLOBAL builtins.eval", "builtins.eval", zipPickle(t, "\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.", nil)},
		{"torch.load itself", "torch.load", zipPickle(t, "\x80\x02ctorch\nload\n.", nil)},
		{"legacy stream", "subprocess.call", legacyPickle("\x80\x02csubprocess\ncall\n.")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadPyTorch(writeTemp(t, tt.data))
			var ge *GlobalNotAllowedError
			require.True(t, errors.As(err, &ge), "want a GlobalNotAllowedError, got %v", err)
			assert.Equal(t, tt.global, ge.Global)
			assert.Contains(t, err.Error(), "names the global "+tt.global)
		})
	}
}

// Declared sizes are checked against the file before anything is
// allocated: each case declares far more than the file holds.
func TestReadPyTorchChecksSizesAgainstTheFile(t *testing.T) {
	runtime.LockOSThread()
	four := make([]byte, 16) // 4 float32 zeros
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"string of 800 MB in 7 bytes", []byte("\x80\x02X0000"), "an item of 808464432 bytes, but only 0 bytes remain"},
		{"frame of 1 TiB", []byte("\x80\x04\x95\x00\x00\x00\x00\x00\x01\x00\x00abc"), "a frame of 1099511627776 bytes, but only 3 bytes remain"},
		{"the same file, well formed", zipPickle(t, tensorPickle(4, []byte{4}, []byte{1}, false), four), ""},
		{"storage of 2^40 elements, 16 bytes in the record", zipPickle(t, tensorPickle(1<<40, []byte{4}, []byte{1}, false), four), "its record holds 16"},
		{"size beyond the storage", zipPickle(t, tensorPickle(4, []byte{4, 4}, []byte{4, 1}, false), four), "more elements than its storage's 4"},
		{"stride beyond the storage", zipPickle(t, tensorPickle(4, []byte{2}, []byte{4}, false), four), "reach past its storage's 4 elements"},
		{"legacy storage longer than the file", legacyPickle(tensorPickle(1<<40, []byte{4}, []byte{1}, true) +
			"\x80\x02]X\x01\x00\x00\x000a." + "\x00\x00\x00\x00\x00\x01\x00\x00"), "an item of 4398046511104 bytes, but only 0 bytes remain"},
		{"long integer of 2^31 bytes", []byte("\x80\x02\x8b\xff\xff\xff\x7f"), "a long integer of 2147483647 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadPyTorch(writeTemp(t, tt.data))
			if tt.want == "" {
				require.NoError(t, err)
				defer freeAll(got)
				checkTensors(t, got, map[string]wantTensor{"w": {[]int64{4}, gotch.Float, []float64{0, 0, 0, 0}}})
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// tensorPickle is a protocol-2 pickle of {"w": tensor}, as torch.save
// writes it, whose tensor views a FloatStorage of numel elements with the
// given size and stride (each below 256). The legacy format's persistent
// ids have a sixth item.
func tensorPickle(numel int64, size, stride []byte, legacy bool) string {
	tuple := func(xs []byte) string {
		s := "("
		for _, x := range xs {
			s += "K" + string([]byte{x})
		}
		return s + "t"
	}
	view := ""
	if legacy {
		view = "N"
	}
	return "\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(" +
		"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu\x8a\x08" +
		string(binary.LittleEndian.AppendUint64(nil, uint64(numel))) + view + "tQ" +
		"K\x00" + tuple(size) + tuple(stride) + "\x89ccollections\nOrderedDict\n)RtRs."
}

// zipPickle packs a data pickle (and storage "0") as torch.save's zip
// archive does.
func zipPickle(t *testing.T, pickle any, storage []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		require.NoError(t, err)
		_, err = f.Write(data)
		require.NoError(t, err)
	}
	switch p := pickle.(type) {
	case string:
		add("archive/data.pkl", []byte(p))
	case []byte:
		add("archive/data.pkl", p)
	}
	if storage != nil {
		add("archive/data/0", storage)
	}
	add("archive/version", []byte("3\n"))
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// legacyPickle prefixes a pickle with the legacy stream's magic number,
// protocol version and system information.
func legacyPickle(pickle string) []byte {
	magic := "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
	version := "\x80\x02M\xe9\x03."
	sys := "\x80\x02}X\x0d\x00\x00\x00little_endian\x88s."
	return []byte(magic + version + sys + pickle)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// corpusBytes decodes a go-fuzz corpus file of one []byte value.
func corpusBytes(t *testing.T, path string) []byte {
	t.Helper()
	text := strings.TrimSpace(string(readFile(t, path)))
	_, lit, ok := strings.Cut(text, "\n")
	require.True(t, ok && strings.HasPrefix(lit, "[]byte(") && strings.HasSuffix(lit, ")"), "corpus file %s", path)
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")"))
	require.NoError(t, err)
	return []byte(s)
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.pt")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}
