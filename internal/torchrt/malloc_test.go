package torchrt

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

// clearAllocatorEnv unsets every variable that keeps TuneAllocator's
// hands off malloc, restoring them when the test ends.
func clearAllocatorEnv(t *testing.T) {
	for _, k := range append([]string{AllocatorEnvOptOut}, allocatorEnv...) {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestTuneAllocator(t *testing.T) {
	tests := []struct {
		name, key, value string
		want             string
		wantEnv          []string
	}{
		{name: "tuned", want: "mmap threshold 32 MiB, trim threshold 256 MiB, no mmap'd blocks, arenas limited to 1",
			wantEnv: []string{"MALLOC_MMAP_THRESHOLD_=33554432", "MALLOC_TRIM_THRESHOLD_=268435456", "MALLOC_MMAP_MAX_=0", "MALLOC_ARENA_MAX=1"}},
		{name: "opt out", key: AllocatorEnvOptOut, value: "default", want: "glibc defaults (ROBARCH_MALLOC=default)"},
		{name: "user's own threshold", key: "MALLOC_MMAP_THRESHOLD_", value: "1048576", want: "as set by MALLOC_MMAP_THRESHOLD_"},
		{name: "user's arenas", key: "MALLOC_ARENA_MAX", value: "4", want: "as set by MALLOC_ARENA_MAX"},
		{name: "user's tunables", key: "GLIBC_TUNABLES", value: "glibc.malloc.trim_threshold=1", want: "as set by GLIBC_TUNABLES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAllocatorEnv(t)
			if tt.key != "" {
				t.Setenv(tt.key, tt.value)
			}
			assert.Equal(t, tt.want, TuneAllocator())
			assert.Equal(t, tt.wantEnv, AllocatorEnv())
		})
	}
}

func TestWithoutAllocatorEnvKeepsTheRest(t *testing.T) {
	env := []string{"PATH=/bin", "MALLOC_ARENA_MAX=1", "GLIBC_TUNABLES=" + GlibcTunables, TunablesMarker + "=1",
		AllocatorEnvOptOut + "=default", "MALLOC_TOP_PAD_=65536", "HOME=/root"}
	assert.Equal(t, []string{"PATH=/bin", "HOME=/root"}, WithoutAllocatorEnv(env))
	assert.Equal(t, "MALLOC_ARENA_MAX=1", env[1], "the caller's slice is left as it was")
}
