package onearena_test

import (
	"runtime"
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
