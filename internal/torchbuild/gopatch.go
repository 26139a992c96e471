package torchbuild

import (
	"fmt"
	"os"
	"path/filepath"
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

// patchGotchGo applies PatchGeneratedOps and PatchTensorAlloc to the gotch
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
	return ops + alloc, nil
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
