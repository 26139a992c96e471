package onearena_test

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/internal/torchrt/onearena"
)

// Tensors made and freed on several OS threads at once all come from the
// main arena: without the constructor, glibc gives threads that meet a
// busy arena one of their own (this test binary imports the package, so
// it runs with the constructor, in a clean environment).
func TestEveryThreadUsesTheMainArena(t *testing.T) {
	require.True(t, onearena.Limited(), "the constructor limited malloc (is ROBARCH_MALLOC or a MALLOC_* variable set?)")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for range 200 {
				x, err := ts.Rand([]int64{256, 1024}, gotch.Float, gotch.CPU)
				if err != nil {
					errs <- err
					return
				}
				y, err := x.Mul(x, true)
				if err != nil {
					errs <- err
					return
				}
				_ = y.Drop()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 1, torchrt.MallocArenas(), "malloc arenas after allocating on 4 threads")
}

// The constructor, which runs before Go code can tell it anything, keeps
// its own copy of the variables that opt out; it must match torchrt's.
func TestOptOutMatchesTorchrt(t *testing.T) {
	assert.ElementsMatch(t, torchrt.AllocatorEnvVars(), onearena.UserVariables())
}

// mappingHeader is the address range that opens each mapping in smaps.
var mappingHeader = regexp.MustCompile(`^[0-9a-f]+-[0-9a-f]+$`)

// The constructor's copies of the tunables and their marker are torchrt's.
func TestTunablesMatchTorchrt(t *testing.T) {
	assert.Equal(t, torchrt.GlibcTunables, onearena.Tunables())
	assert.Equal(t, torchrt.TunablesMarker, onearena.Marker())
}

// This test binary imports the package, so it was started again under
// robarch's tunables: the environment holds them, and malloc advised its
// heap for huge pages ("hg" in the heap mapping's VmFlags), which is what
// took robarch's kernels out of their slow runs.
func TestRunsUnderRobarchsTunables(t *testing.T) {
	require.Equal(t, torchrt.GlibcTunables, os.Getenv("GLIBC_TUNABLES"))
	require.Equal(t, "1", os.Getenv(torchrt.TunablesMarker))
	x, err := ts.Rand([]int64{1024, 1024}, gotch.Float, gotch.CPU) // 4 MiB from the heap
	require.NoError(t, err)
	defer x.MustDrop()
	smaps, err := os.ReadFile("/proc/self/smaps")
	require.NoError(t, err)
	var heapFlags string
	inHeap := false
	for _, line := range strings.Split(string(smaps), "\n") {
		if f := strings.Fields(line); len(f) > 0 && mappingHeader.MatchString(f[0]) {
			inHeap = f[len(f)-1] == "[heap]"
		}
		if inHeap && strings.HasPrefix(line, "VmFlags:") {
			heapFlags = line
		}
	}
	require.NotEmpty(t, heapFlags, "a [heap] mapping")
	assert.Contains(t, strings.Fields(heapFlags), "hg", "the heap is advised for huge pages")
}

// The process started again keeps its program's name (ps, top and pkill
// read it), not that of /proc/self/exe.
func TestRunsAgainUnderItsOwnName(t *testing.T) {
	require.Equal(t, "1", os.Getenv(torchrt.TunablesMarker), "the constructor ran the test binary again")
	self, err := os.Executable()
	require.NoError(t, err)
	comm, err := os.ReadFile("/proc/self/comm")
	require.NoError(t, err)
	name := filepath.Base(self)
	if len(name) > 15 { // the kernel keeps 15 bytes of it
		name = name[:15]
	}
	assert.Equal(t, name, strings.TrimSpace(string(comm)))
}
