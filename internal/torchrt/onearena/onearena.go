// Package onearena limits glibc's malloc to its main arena from the moment
// the program is loaded. Import it for that side effect, from a main
// package only:
//
//	import _ "github.com/robarch/robarch/internal/torchrt/onearena"
//
// Why: glibc gives every thread that allocates while the main arena is
// busy an arena of its own, made of 64 MiB mmap'd heaps that it unmaps as
// soon as one falls empty, whatever the trim threshold. A Go program runs
// libtorch on a locked thread that is not the process's first, so its
// activations live in such heaps and every step faults them in again.
// Measured with robarch bench on micro inference (batch 128, 60 steps):
// runs whose torch thread had its own arena made 250-900 thousand page
// faults and ran at 0.73-0.74× PyTorch, runs on the main arena ~50
// thousand and ~1.0×. mallopt(M_ARENA_MAX) from Go comes too late: by
// then the runtime's threads may already hold arenas, and a thread keeps
// the one it has. A C constructor runs before the Go runtime starts any
// thread.
//
// Before that, it runs the program again (once, the same arguments, via
// the path /proc/self/exe points to) with GLIBC_TUNABLES holding torchrt's malloc settings
// plus glibc.malloc.hugetlb=1, which glibc reads only at start: malloc then
// advises its heap for transparent huge pages. Why: on 4 KiB pages
// robarch's libtorch kernels ran 20-25% slower in some runs and not in
// others, a state that held for a whole run (resnet18-cifar inference,
// 2026-12-03: 214-278 images/s in one run, 300-320 in the next, the
// PyTorch peer at 295-330 in both); with the heap in huge pages the runs
// that followed were all at the fast rate, and resnet18-cifar bf16
// training went 0.68-0.71x PyTorch to 0.93-0.96x (docs/precision.md).
//
// It leaves malloc alone, as torchrt.TuneAllocator does, when
// ROBARCH_MALLOC=default or the user tuned malloc through its environment
// (MALLOC_*_ variables, MALLOC_ARENA_MAX, GLIBC_TUNABLES).
package onearena

/*
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int robarch_arena_limited;

// The user's own malloc settings: torchrt's allocatorEnv, which a test
// checks this list against (the constructor runs before Go can hand it over).
static const char *const robarch_user_vars[] = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
	"MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES"};
static const int robarch_nuser_vars = sizeof robarch_user_vars / sizeof robarch_user_vars[0];

// robarch's malloc settings as glibc tunables (torchrt.GlibcTunables, which
// a test checks this against), and the variable that marks a process
// started with them (torchrt.TunablesMarker).
#define ROBARCH_TUNABLES "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_max=0:glibc.malloc.arena_max=1:glibc.malloc.hugetlb=1"
#define ROBARCH_MARKER "ROBARCH_MALLOC_TUNABLES"

static int robarch_ours(void) {
	const char *t = getenv("GLIBC_TUNABLES");
	return getenv(ROBARCH_MARKER) != NULL && t != NULL && strcmp(t, ROBARCH_TUNABLES) == 0;
}

// glibc passes constructors the program's arguments (a GNU extension).
__attribute__((constructor)) static void robarch_limit_arenas(int argc, char **argv, char **envp) {
	(void)argc;
	(void)envp;
	if (robarch_ours()) {  // started again below: glibc read the tunables
		robarch_arena_limited = 1;
		return;
	}
	const char *opt = getenv("ROBARCH_MALLOC");
	if (opt != NULL && strcmp(opt, "default") == 0) return;
	for (int i = 0; i < robarch_nuser_vars; i++) {
		if (getenv(robarch_user_vars[i]) != NULL) return;
	}
	// glibc reads its tunables only at start: run this program again with
	// them, once (the marker stops a second try, e.g. where glibc ignores
	// GLIBC_TUNABLES). Failing that, limit the arenas in this process.
	// The program's own path, not /proc/self/exe: the kernel names a
	// process after the file it executes, and ps, top and pkill would see
	// "exe". /proc/self/exe is the fallback (the file was replaced).
	if (getenv(ROBARCH_MARKER) == NULL && argv != NULL) {
		setenv("GLIBC_TUNABLES", ROBARCH_TUNABLES, 1);
		setenv(ROBARCH_MARKER, "1", 1);
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n > 0) {
			self[n] = 0;
			execv(self, argv);
		}
		execv("/proc/self/exe", argv);
		unsetenv("GLIBC_TUNABLES");
	}
	robarch_arena_limited = mallopt(M_ARENA_MAX, 1) == 1;
}

static int robarch_arenas_limited(void) { return robarch_arena_limited; }
static const char *robarch_tunables(void) { return ROBARCH_TUNABLES; }
static const char *robarch_marker(void) { return ROBARCH_MARKER; }
static int robarch_user_var_count(void) { return robarch_nuser_vars; }
static const char *robarch_user_var(int i) { return robarch_user_vars[i]; }
*/
import "C"

// Limited says whether malloc is limited to one arena: by robarch's glibc
// tunables, or by the constructor's mallopt where it could not run the
// program with them.
func Limited() bool { return C.robarch_arenas_limited() != 0 }

// Tunables is the constructor's copy of torchrt.GlibcTunables.
func Tunables() string { return C.GoString(C.robarch_tunables()) }

// Marker is the constructor's copy of torchrt.TunablesMarker, the variable
// it sets before it runs the program again.
func Marker() string { return C.GoString(C.robarch_marker()) }

// UserVariables are the environment variables whose presence makes the
// constructor leave malloc alone (besides ROBARCH_MALLOC=default).
func UserVariables() []string {
	vars := make([]string, 0, int(C.robarch_user_var_count()))
	for i := range int(C.robarch_user_var_count()) {
		vars = append(vars, C.GoString(C.robarch_user_var(C.int(i))))
	}
	return vars
}
