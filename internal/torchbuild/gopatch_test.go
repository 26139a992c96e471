package torchbuild

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// opsFixture has the three shapes of gotch v0.9.1's generated Go ops that
// the patch touches: one output, several outputs, and an in-place op.
const opsFixture = `package ts

// #include "stdlib.h"
import "C"

func(ts *Tensor) Abs(del bool)(retVal *Tensor, err error) { 
  if del { defer ts.MustDrop() }
  ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))
  
  lib.AtgAbs(ptr, ts.ctensor)
  retVal = newTensor(*ptr, "Abs")
  return retVal, err
} 

func Aminmax(self *Tensor)(retVal0 *Tensor, retVal1 *Tensor, err error) { 
  ctensorPtr0 := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))
  ctensorPtr1 := (*lib.Ctensor)(unsafe.Pointer(uintptr(unsafe.Pointer(ctensorPtr0)) + unsafe.Sizeof(ctensorPtr0)))
  lib.AtgAminmax(ctensorPtr0, self.ctensor)
  retVal0 = newTensor(*ctensorPtr0, "Aminmax_0")
  retVal1 = newTensor(*ctensorPtr1, "Aminmax_1")
  return retVal0, retVal1, err
} 

func(ts *Tensor) Relu_()(err error) { 
  ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))
  
  lib.AtgRelu_(ptr, ts.ctensor)
  ts.ctensor = *ptr
  return err
} 
`

func TestPatchGeneratedOps(t *testing.T) {
	out, n, err := PatchGeneratedOps(opsFixture)
	require.NoError(t, err)
	assert.Equal(t, 4, n, "two single-output allocations, one multi-output, one in-place swap")
	assert.NotContains(t, out, "C.malloc(0)")
	assert.NotContains(t, out, "ts.ctensor = *ptr")
	assert.Equal(t, 2, strings.Count(out, "defer C.free(unsafe.Pointer(ptr))"))
	assert.Equal(t, 1, strings.Count(out, "defer C.free(unsafe.Pointer(ctensorPtr0))"))
	assert.Equal(t, 3, strings.Count(out, "C.malloc(C.size_t(8) * C.size_t(unsafe.Sizeof(lib.Ctensor(nil))))"))
	assert.Contains(t, out, "lib.AtgRelu_(ptr, ts.ctensor)\n  lib.AtFree(*ptr)\n")
	// The rest of each op is untouched.
	assert.Contains(t, out, `retVal1 = newTensor(*ctensorPtr1, "Aminmax_1")`)
}

func TestPatchGeneratedOpsRejectsUnknownCode(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no allocations", "package ts\n// #include \"stdlib.h\"\n", "needs a new patch"},
		{"no stdlib", strings.ReplaceAll(opsFixture, `// #include "stdlib.h"`, ""), "stdlib.h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := PatchGeneratedOps(tt.src)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestPatchTensorAlloc(t *testing.T) {
	src := "func newTensor(ctensor lib.Ctensor) *Tensor {\n\tx := new(Tensor)\n\tx.ctensor = ctensor\n\tx.d = new(bigStruct)\n\n\tlock.Lock()\n"
	out, err := PatchTensorAlloc(src)
	require.NoError(t, err)
	assert.NotContains(t, out, "new(bigStruct)")
	assert.Contains(t, out, "\tx.ctensor = ctensor\n\t// robarch:", "the rest of newTensor is untouched")

	tests := []struct{ name, src string }{
		{"missing", "func newTensor() {}\n"},
		{"twice", src + src},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PatchTensorAlloc(tt.src)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "needs a new patch")
		})
	}
}

// pickleFixture has the two allocations of gotch v0.9.1's unpickler that
// PatchPickle bounds.
const pickleFixture = `package pickle

func (up *Unpickler) read(n int) ([]byte, error) {
	data := make([]byte, n)
	return data, nil
}

func (up *Unpickler) loadFrame(frameSize int) error {
	buf := make([]byte, frameSize)
	_ = buf
	return nil
}
`

const storageFixture = `package pickle

func (s *FloatStorage) SetFromFileWithSize(r io.Reader, size int) error {
	data := make([]float32, size)
	for i := 0; i < size; i++ {
		data[i] = math.Float32frombits(1)
	}
	return nil
}
`

func TestPatchPickleBoundsDeclaredLengths(t *testing.T) {
	out, n, err := PatchPickle(pickleFixture)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Contains(t, out, "if n < 0 || n > 1073741824 {")
	assert.Contains(t, out, "return nil, fmt.Errorf(\"pickle: an item of %d bytes")
	assert.Contains(t, out, "if frameSize < 0 || frameSize > 1073741824 {")
	assert.Less(t, strings.Index(out, "if n < 0"), strings.Index(out, "data := make([]byte, n)"), "the check comes before the allocation")

	_, _, err = PatchPickle("package pickle\n")
	require.ErrorContains(t, err, "needs a new patch")
}

func TestPatchStorageGrowsAsRead(t *testing.T) {
	src := strings.Repeat(storageFixture, len(storageTypes))
	out, n, err := PatchStorage(src)
	require.NoError(t, err)
	assert.Equal(t, 2*len(storageTypes), n)
	assert.NotContains(t, out, "make([]float32, size)")
	assert.NotContains(t, out, "data[i] =")
	assert.Contains(t, out, "data := make([]float32, 0, robarchInitialCap(size))")
	assert.Equal(t, 1, strings.Count(out, "func robarchInitialCap(size int) int {"), "the helper is added once")
	assert.Contains(t, out, "\t\tdata = append(data, math.Float32frombits(1))\n")

	_, _, err = PatchStorage(storageFixture)
	require.ErrorContains(t, err, "want 10 of each")
}

func TestPatchLegacyLoaderEndsOnAnEmptyArchive(t *testing.T) {
	src := "\tfor {\n\t\tswitch err {\n\t\tcase io.EOF:\n\t\t\tbreak // End of archive\n\t\t}\n\t}\n"
	out, n, err := PatchLegacyLoader(src)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.NotContains(t, out, "break // End of archive")
	assert.Contains(t, out, "return nil, fmt.Errorf(\"not a torch.save file: empty, or an empty tar archive\")")

	_, _, err = PatchLegacyLoader("package pickle\n")
	require.ErrorContains(t, err, "needs a new patch")
}
