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
// It leaves malloc alone, as torchrt.TuneAllocator does, when
// ROBARCH_MALLOC=default or the user tuned malloc through its environment
// (MALLOC_*_ variables, MALLOC_ARENA_MAX, GLIBC_TUNABLES).
package onearena

/*
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static int robarch_arena_limited;

// The user's own malloc settings: torchrt's allocatorEnv, which a test
// checks this list against (the constructor runs before Go can hand it over).
static const char *const robarch_user_vars[] = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
	"MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES"};
static const int robarch_nuser_vars = sizeof robarch_user_vars / sizeof robarch_user_vars[0];

__attribute__((constructor)) static void robarch_limit_arenas(void) {
	const char *opt = getenv("ROBARCH_MALLOC");
	if (opt != NULL && strcmp(opt, "default") == 0) return;
	for (int i = 0; i < robarch_nuser_vars; i++) {
		if (getenv(robarch_user_vars[i]) != NULL) return;
	}
	robarch_arena_limited = mallopt(M_ARENA_MAX, 1) == 1;
}

static int robarch_arenas_limited(void) { return robarch_arena_limited; }
static int robarch_user_var_count(void) { return robarch_nuser_vars; }
static const char *robarch_user_var(int i) { return robarch_user_vars[i]; }
*/
import "C"

// Limited says whether the constructor limited malloc to one arena.
func Limited() bool { return C.robarch_arenas_limited() != 0 }

// UserVariables are the environment variables whose presence makes the
// constructor leave malloc alone (besides ROBARCH_MALLOC=default).
func UserVariables() []string {
	vars := make([]string, 0, int(C.robarch_user_var_count()))
	for i := range int(C.robarch_user_var_count()) {
		vars = append(vars, C.GoString(C.robarch_user_var(C.int(i))))
	}
	return vars
}
