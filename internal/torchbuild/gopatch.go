package torchbuild

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// generatedOps is gotch's generated Go file of tensor operations.
const generatedOps = "ts/tensor-generated.go"

// outputSlots is how many tensor handles the patched output arrays hold:
// gotch's generated ops return at most 7 tensors.
const outputSlots = 8

// The patterns in gotch v0.9.1's generated ops that PatchGeneratedOps
// rewrites.
const (
	// Every op allocates its output array with malloc(0), writes its result
	// handles into it and never frees it: a leak of a small block per op
	// (RSS grows over a long run), and ops with more than three outputs
	// write past the block.
	singleOutAlloc = "ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))"
	multiOutAlloc  = "ctensorPtr0 := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))"
	// In-place ops replace the tensor's handle by the new one libtorch
	// returns (to the same tensor) without freeing the old one, so the
	// storage is never freed. Keeping the old handle and freeing the new one
	// is the same tensor without the leak.
	inPlaceSwap = "ts.ctensor = *ptr"
)

// PatchGeneratedOps fixes, in gotch's generated Go ops, the output array
// that is never freed (and too small for multi-output ops) and the handle
// leaked by every in-place op. It returns how many sites it patched and
// fails when the file does not look like the generated code it knows, so a
// new gotch version is noticed rather than silently left unpatched.
func PatchGeneratedOps(src string) (string, int, error) {
	single, multi, inPlace := strings.Count(src, singleOutAlloc), strings.Count(src, multiOutAlloc), strings.Count(src, inPlaceSwap)
	if single == 0 || inPlace == 0 {
		return "", 0, fmt.Errorf("%s: found none of gotch's generated output allocations %q or in-place handle swaps %q; this gotch version needs a new patch", generatedOps, singleOutAlloc, inPlaceSwap)
	}
	if !strings.Contains(src, `#include "stdlib.h"`) && !strings.Contains(src, "#include <stdlib.h>") {
		return "", 0, fmt.Errorf("%s: its cgo preamble does not include stdlib.h, which C.free needs", generatedOps)
	}
	alloc := func(name string) string {
		return fmt.Sprintf("%s := (*lib.Ctensor)(C.malloc(C.size_t(%d) * C.size_t(unsafe.Sizeof(lib.Ctensor(nil)))))\n  defer C.free(unsafe.Pointer(%s))", name, outputSlots, name)
	}
	r := strings.NewReplacer(
		singleOutAlloc, alloc("ptr"),
		multiOutAlloc, alloc("ctensorPtr0"),
		inPlaceSwap, "lib.AtFree(*ptr)",
	)
	return r.Replace(src), single + multi + inPlace, nil
}

// tensorFile is gotch's Go file holding newTensor, which every op calls.
const tensorFile = "ts/tensor.go"

// tensorBallast is the line in gotch v0.9.1's newTensor that gives every
// tensor handle a 100 kB zeroed Go allocation, so that the garbage
// collector runs often enough to finalise handles nobody dropped. robarch
// drops its tensors, and the ballast costs more than the work on small
// networks: a micro-preset inference step allocates ~10 MB of it, which
// makes the collector run about once per step and the runtime return and
// re-fault those pages (2.5 million page faults in 200 steps, against
// 53 thousand without it; 1,599 against 2,632 images/s).
const tensorBallast = "\tx.d = new(bigStruct)\n"

// PatchTensorAlloc removes the per-tensor ballast from gotch's newTensor.
// It fails when the line is not there exactly once, so a new gotch version
// is noticed rather than silently left unpatched.
func PatchTensorAlloc(src string) (string, error) {
	if n := strings.Count(src, tensorBallast); n != 1 {
		return "", fmt.Errorf("%s: found %d copies of newTensor's ballast allocation %q, want 1; this gotch version needs a new patch", tensorFile, n, strings.TrimSpace(tensorBallast))
	}
	return strings.Replace(src, tensorBallast, "\t// robarch: no 100 kB ballast per tensor (see internal/torchbuild)\n", 1), nil
}

// patchGotchGo applies PatchGeneratedOps, PatchTensorAlloc, PatchPickle,
// PatchStorage and PatchLegacyLoader to the gotch
// copy in dir and returns how many sites it patched.
func patchGotchGo(dir string) (int, error) {
	ops, err := patchFile(filepath.Join(dir, generatedOps), PatchGeneratedOps)
	if err != nil {
		return 0, err
	}
	alloc, err := patchFile(filepath.Join(dir, tensorFile), func(src string) (string, int, error) {
		out, err := PatchTensorAlloc(src)
		return out, 1, err
	})
	if err != nil {
		return 0, err
	}
	pickle, err := patchFile(filepath.Join(dir, pickleFile), PatchPickle)
	if err != nil {
		return 0, err
	}
	storage, err := patchFile(filepath.Join(dir, storageFile), PatchStorage)
	if err != nil {
		return 0, err
	}
	legacy, err := patchFile(filepath.Join(dir, serializationFile), PatchLegacyLoader)
	if err != nil {
		return 0, err
	}
	return ops + alloc + pickle + storage + legacy, nil
}

// patchFile rewrites path with patch.
func patchFile(path string, patch func(string) (string, int, error)) (int, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("patch gotch: %w", err)
	}
	out, n, err := patch(string(src))
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		return 0, fmt.Errorf("patch gotch: %w", err)
	}
	return n, nil
}

// Files of gotch's pure-Go pickle reader (ReadPyTorch's unpickler).
const (
	pickleFile        = "pickle/pickle.go"
	storageFile       = "pickle/storage.go"
	serializationFile = "pickle/serialization.go"
)

// maxPickleItem bounds one pickled item or frame. gotch allocates a
// pickle's declared lengths before reading them, so a 14-byte file
// declaring a 1 TiB byte string (or frame) kills the process with
// "runtime: out of memory", which no recover catches (found by
// FuzzReadPyTorch). A state dict's pickle holds names and metadata only:
// its tensors' data lives outside the pickle, so 1 GiB is far above any
// real item.
const maxPickleItem = 1 << 30

// The allocations in gotch v0.9.1's pickle reader that PatchPickle bounds.
const (
	pickleReadAlloc  = "func (up *Unpickler) read(n int) ([]byte, error) {\n\tdata := make([]byte, n)\n"
	pickleFrameAlloc = "func (up *Unpickler) loadFrame(frameSize int) error {\n\tbuf := make([]byte, frameSize)\n"
)

// PatchPickle makes gotch's unpickler refuse items and frames over
// maxPickleItem with an error instead of allocating them.
func PatchPickle(src string) (string, int, error) {
	if strings.Count(src, pickleReadAlloc) != 1 || strings.Count(src, pickleFrameAlloc) != 1 {
		return "", 0, fmt.Errorf("%s: the unpickler's read or loadFrame allocation is not where gotch v0.9.1 has it; this gotch version needs a new patch", pickleFile)
	}
	// guard refuses a length over maxPickleItem before it is allocated;
	// ret is what the function returns besides the error.
	guard := func(length, ret string) string {
		return fmt.Sprintf("if %s < 0 || %s > %d { // robarch: see internal/torchbuild\n\t\treturn %sfmt.Errorf(\"pickle: an item of %%d bytes: corrupt file (the limit is %d)\", %s)\n\t}\n\t",
			length, length, maxPickleItem, ret, maxPickleItem, length)
	}
	r := strings.NewReplacer(
		pickleReadAlloc, strings.Replace(pickleReadAlloc, "data :=", guard("n", "nil, ")+"data :=", 1),
		pickleFrameAlloc, strings.Replace(pickleFrameAlloc, "buf :=", guard("frameSize", "")+"buf :=", 1),
	)
	return r.Replace(src), 2, nil
}

// legacyTarEOF is the loop of gotch v0.9.1's legacy loader that never
// ends on a file a tar reader sees as an empty archive (an empty file, or
// one starting with a zero block): its "break" leaves the switch, not the
// loop. Found by FuzzReadPyTorch.
const legacyTarEOF = "\t\tcase io.EOF:\n\t\t\tbreak // End of archive\n"

// PatchLegacyLoader makes that case an error.
func PatchLegacyLoader(src string) (string, int, error) {
	if strings.Count(src, legacyTarEOF) != 1 {
		return "", 0, fmt.Errorf("%s: the legacy loader's tar EOF case is not where gotch v0.9.1 has it; this gotch version needs a new patch", serializationFile)
	}
	return strings.Replace(src, legacyTarEOF, "\t\tcase io.EOF: // robarch: an empty archive is not a torch.save file (see internal/torchbuild)\n\t\t\treturn nil, fmt.Errorf(\"not a torch.save file: empty, or an empty tar archive\")\n", 1), 1, nil
}

// storageTypes are the element types of gotch v0.9.1's typed storages,
// each of which allocates its declared element count up front.
var storageTypes = []string{"half.Float16", "half.BFloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"}

// PatchStorage makes gotch's storages grow with the data actually read
// rather than allocate the element count a file declares: a storage
// claiming 2^40 elements then fails at the end of the file, like any
// truncated one.
func PatchStorage(src string) (string, int, error) {
	alloc := regexp.MustCompile(`(?m)^\tdata := make\(\[\]([A-Za-z0-9.]+), size\)$`)
	store := regexp.MustCompile(`(?m)^(\t\t)data\[i\] = (.+)$`)
	allocs, stores := alloc.FindAllStringSubmatch(src, -1), store.FindAllString(src, -1)
	if len(allocs) != len(storageTypes) || len(stores) != len(storageTypes) {
		return "", 0, fmt.Errorf("%s: found %d storage allocations and %d element stores, want %d of each; this gotch version needs a new patch", storageFile, len(allocs), len(stores), len(storageTypes))
	}
	out := alloc.ReplaceAllString(src, "\tdata := make([]$1, 0, robarchInitialCap(size)) // robarch: grows as read (internal/torchbuild)")
	out = store.ReplaceAllString(out, "${1}data = append(data, $2)")
	// gotch's module is go 1.20: no built-in min and max.
	out += "\n// robarchInitialCap is a storage's first capacity: its declared size, at\n// most 65536 elements (the rest grows as the data is read).\nfunc robarchInitialCap(size int) int {\n\tif size < 0 {\n\t\treturn 0\n\t}\n\tif size > 1<<16 {\n\t\treturn 1 << 16\n\t}\n\treturn size\n}\n"
	return out, 2 * len(allocs), nil
}
