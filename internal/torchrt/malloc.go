package torchrt

/*
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// robarch_malloc_arenas counts the arenas in malloc_info's report (one
// <heap nr="..."> element each); -1 if it cannot be had.
static int robarch_malloc_arenas(void) {
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) return -1;
	int ok = malloc_info(0, f) == 0;
	fclose(f);
	int n = 0;
	for (char *p = buf; ok && (p = strstr(p, "<heap nr=")) != NULL; p++) n++;
	free(buf);
	return ok ? n : -1;
}
*/
import "C"

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// glibc's malloc serves every block above its mmap threshold (128 KiB at
// start, raised dynamically only when such a block is freed) with a fresh
// mmap, and gives the top of the heap back to the OS as soon as 128 KiB of
// it is free. libtorch's CPU allocator asks malloc for every activation and
// gradient, so with glibc's defaults a small network's attack or training
// step spends much of its time in page faults on memory it has just
// returned. Measured on ref-small (bench/reference, batch 128, 2 threads):
// PGD-10 385 → 660 images/s with the settings below, and PyTorch eager on
// the same libtorch gains just as much from the same settings.
const (
	// MmapThreshold is the largest block malloc takes from its heap rather
	// than from mmap: glibc's upper limit on 64-bit (HEAP_MAX_SIZE/2).
	MmapThreshold = 32 << 20
	// TrimThreshold is how much free memory the heap may keep at its top
	// before malloc returns it to the OS: a few steps' worth of activations.
	TrimThreshold = 256 << 20
	// Arenas is how many malloc arenas the process may have: one, the main
	// arena, which grows by brk and honours TrimThreshold. A Go program runs
	// libtorch on a thread other than the process's first, and glibc gives
	// such a thread its own arena made of 64 MiB mmap'd heaps, which it
	// unmaps whenever one falls empty, whatever the trim threshold: every
	// step then faults its activations in again. Measured on micro
	// inference (batch 128, 60 steps, robarch bench --peer): 0.73-0.74×
	// PyTorch and ~900 thousand page faults with glibc's default arenas,
	// 0.97-1.00× and ~95 thousand with one. PyTorch does not need this: it
	// runs on the first thread, which uses the main arena.
	Arenas = 1
	// MmapMax is how many blocks malloc may serve with mmap: none. Blocks
	// above MmapThreshold (which glibc caps at 32 MiB) would otherwise be
	// mapped on every allocation and unmapped on every free, and a CIFAR
	// ResNet-18's activations at batch 128 are larger than that: 10 million
	// page faults and 15% of the CPU time in the kernel over 5 PGD-10
	// steps. From the heap instead, resnet18-cifar PGD-10 went 7.9 → 9.2
	// images/s in robarch and 8.1 → 9.3 in PyTorch eager (1.0 million and
	// 0.3 million page faults).
	MmapMax = 0
)

// GlibcTunables are the settings above as glibc tunables, plus
// glibc.malloc.hugetlb=1 (malloc advises its heap for transparent huge
// pages; glibc 2.35 and later, ignored before). glibc reads them only when
// a program starts, so the robarch command runs itself again with them
// (package onearena) and marks that run with TunablesMarker; its PyTorch
// peers inherit them.
var GlibcTunables = fmt.Sprintf("glibc.malloc.mmap_threshold=%d:glibc.malloc.trim_threshold=%d:glibc.malloc.mmap_max=%d:glibc.malloc.arena_max=%d:glibc.malloc.hugetlb=1",
	MmapThreshold, TrimThreshold, MmapMax, Arenas)

// TunablesMarker is set in a process started with GlibcTunables by robarch.
const TunablesMarker = "ROBARCH_MALLOC_TUNABLES"

// underOwnTunables says whether this process was started with GlibcTunables.
func underOwnTunables() bool {
	return os.Getenv(TunablesMarker) != "" && os.Getenv("GLIBC_TUNABLES") == GlibcTunables
}

// allocatorEnv are the environment variables through which a user tunes
// glibc's malloc; when any is set, TuneAllocator leaves malloc alone.
var allocatorEnv = []string{"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES"}

// AllocatorEnvVars are the environment variables through which a user
// tunes glibc's malloc; when any is set, robarch leaves malloc alone.
func AllocatorEnvVars() []string { return slices.Clone(allocatorEnv) }

// AllocatorEnvOptOut is the environment variable that, set to "default",
// keeps glibc's malloc settings as they are.
const AllocatorEnvOptOut = "ROBARCH_MALLOC"

// TuneAllocator sets glibc malloc's mmap and trim thresholds, its use of
// mmap and its arena count for libtorch work (see MmapThreshold,
// TrimThreshold, MmapMax and Arenas) and describes what it did. It changes
// nothing when the user tuned malloc through its own environment variables
// (AllocatorEnvVars) or set ROBARCH_MALLOC=default.
// Call it once, before the first tensor is made. The arena limit binds only
// threads that have not allocated yet (a thread keeps its arena), which is
// why the robarch command also imports package onearena.
func TuneAllocator() string {
	if why, left := leftAlone(); left {
		return why
	}
	if C.mallopt(C.M_MMAP_THRESHOLD, C.int(MmapThreshold)) != 1 || C.mallopt(C.M_TRIM_THRESHOLD, C.int(TrimThreshold)) != 1 ||
		C.mallopt(C.M_ARENA_MAX, C.int(Arenas)) != 1 || C.mallopt(C.M_MMAP_MAX, C.int(MmapMax)) != 1 {
		return "glibc defaults (mallopt refused)"
	}
	d := fmt.Sprintf("mmap threshold %d MiB, trim threshold %d MiB, no mmap'd blocks, arenas limited to %d", MmapThreshold>>20, TrimThreshold>>20, Arenas)
	if underOwnTunables() {
		d += ", heap advised for huge pages (THP " + thpMode() + ")"
	}
	return d
}

// thpMode is the kernel's transparent-huge-page mode (the bracketed word
// of /sys/kernel/mm/transparent_hugepage/enabled): with "never" the
// heap's advice does nothing.
func thpMode() string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return "unknown"
	}
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return "unknown"
	}
	return s[i+1 : j]
}

// leftAlone says whether the user's environment keeps malloc's settings
// out of TuneAllocator's hands, and which settings then apply.
func leftAlone() (string, bool) {
	if underOwnTunables() {
		return "", false
	}
	if os.Getenv(AllocatorEnvOptOut) == "default" {
		return "glibc defaults (" + AllocatorEnvOptOut + "=default)", true
	}
	for _, k := range allocatorEnv {
		if _, ok := os.LookupEnv(k); ok {
			return "as set by " + k, true
		}
	}
	return "", false
}

// AllocatorEnv returns the environment settings that give another process
// on glibc (such as a PyTorch peer in a benchmark) the malloc settings that
// TuneAllocator applies, or nil when TuneAllocator would leave malloc alone
// (that process then inherits the user's own settings).
func AllocatorEnv() []string {
	if _, left := leftAlone(); left {
		return nil
	}
	env := []string{fmt.Sprintf("MALLOC_MMAP_THRESHOLD_=%d", MmapThreshold), fmt.Sprintf("MALLOC_TRIM_THRESHOLD_=%d", TrimThreshold),
		fmt.Sprintf("MALLOC_MMAP_MAX_=%d", MmapMax), fmt.Sprintf("MALLOC_ARENA_MAX=%d", Arenas)}
	if underOwnTunables() { // the heap in huge pages too, as this process's
		env = append(env, "GLIBC_TUNABLES="+GlibcTunables)
	}
	return env
}

// WithoutAllocatorEnv is env (KEY=VALUE entries) without any variable that
// sets glibc's malloc: the user's (AllocatorEnvVars), robarch's marker and
// its opt-out. A process started with it runs on glibc's defaults.
func WithoutAllocatorEnv(env []string) []string {
	drop := append(AllocatorEnvVars(), TunablesMarker, AllocatorEnvOptOut)
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(drop, name)
	})
}

// MallocInUse is the number of bytes glibc's malloc has handed out and not
// had back, over all arenas: libtorch's tensors and gotch's small blocks.
// Tests use it to catch leaks of C memory, which Go's heap figures miss.
func MallocInUse() int64 {
	m := C.mallinfo2()
	return int64(m.uordblks) + int64(m.hblkhd)
}

// MallocArenas is how many arenas glibc's malloc has made so far (-1 if it
// cannot tell). One means every thread allocates from the main arena, as
// package onearena arranges for the robarch command.
func MallocArenas() int { return int(C.robarch_malloc_arenas()) }

// ReleaseFreeMemory gives the OS back the memory malloc holds free, in every
// arena and inside the heap as well as at its top (malloc_trim(0)). What
// is left resident afterwards is memory in use: measuring RSS growth after
// it tells a leak from the free memory the trim threshold lets malloc keep.
func ReleaseFreeMemory() { C.malloc_trim(0) }

// Runtime describes how Init prepared the process.
type Runtime struct {
	Malloc string // see TuneAllocator
	Sysmon string // see QuietSysmon
}

// Init prepares this process for libtorch work: the intra-op thread count
// (see SetThreads), malloc (see TuneAllocator) and the Go runtime's
// monitor thread (see QuietSysmon).
func Init(threads int) Runtime {
	alloc := TuneAllocator()
	SetThreads(threads)
	return Runtime{Malloc: alloc, Sysmon: QuietSysmon()}
}
