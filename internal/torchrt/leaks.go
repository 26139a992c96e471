package torchrt

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/sugarme/gotch/ts"
)

// TensorsLeftBy runs fn and returns how many more gotch tensor handles
// exist after it than before: the handles fn made and did not drop. The
// garbage collector is off meanwhile, so that neither earlier garbage
// finalised during fn nor fn's own forgotten handles finalised before the
// count hide anything. fn must run its torch work on the calling goroutine
// (which the caller has locked to its thread).
//
// gotch counts live handles in an exported map that its unexported lock
// guards; with the collector off and its finalizers run, nothing else
// writes the map while fn runs on this goroutine.
func TensorsLeftBy(fn func() error) (int, error) {
	// Off first, so that no collection starts between settling and counting
	// (runtime.GC still collects when asked).
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	settleFinalizers()
	before := len(ts.ExistingTensors)
	err := fn()
	return len(ts.ExistingTensors) - before, err
}

// settleFinalizers collects garbage and waits until the finalizers it
// queued, gotch's among them, have run (a sentinel's finalizer runs after
// them, in the same goroutine), then until the handle count holds still.
func settleFinalizers() {
	done := make(chan struct{})
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) { close(done) })
	sentinel = nil
	runtime.GC()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	for n := -1; n != len(ts.ExistingTensors); {
		n = len(ts.ExistingTensors)
		time.Sleep(5 * time.Millisecond)
	}
}
