// Package torchrt is robarch's thin runtime layer over gotch: thread count,
// seeding, device parsing, and running torch work on one goroutine locked to
// its OS thread. It exists because libtorch keeps grad mode and gotch keeps
// its last error in C++ thread-locals, and Go goroutines migrate between
// threads: torch calls made from a wandering goroutine can read the wrong
// grad mode or lose an error.
package torchrt

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/libtch"

	"github.com/robarch/robarch/internal/devicename"
)

// SetThreads sets libtorch's intra-op thread count; n <= 0 means one per
// CPU. Debian's libtorch otherwise starts with 1 thread, which measured 26%
// slower on a 2-core machine.
func SetThreads(n int) {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	libtch.RobarchSetNumThreads(n)
}

// Threads returns libtorch's intra-op thread count.
func Threads() int { return libtch.RobarchNumThreads() }

// Seed seeds libtorch's global CPU and CUDA generators; the same seed gives
// the same numbers as PyTorch's torch.manual_seed.
func Seed(seed int64) { libtch.RobarchManualSeed(seed) }

// CUDADevices returns how many CUDA devices libtorch sees.
func CUDADevices() int { return int(libtch.AtcCudaDeviceCount()) }

// ParseDevice turns "cpu", "cuda" or "cuda:N" into a gotch device, checking
// that a CUDA device exists.
func ParseDevice(name string) (gotch.Device, error) {
	n, err := devicename.Parse(name)
	if err != nil || !n.CUDA {
		return gotch.CPU, err
	}
	if count := CUDADevices(); n.Index >= count {
		return gotch.CPU, fmt.Errorf("device %q: libtorch sees %d CUDA device(s); use cpu, or a CUDA libtorch (LIBTORCH=... make setup)", name, count)
	}
	return gotch.CudaBuilder(uint(n.Index)), nil
}

// BuildInfo is how torchbuild prepared the linked gotch copy.
type BuildInfo struct {
	GotchVersion string `json:"gotch_version"`
	Libtorch     struct {
		Root     string `json:"root"`
		LibDir   string `json:"lib_dir"`
		Version  string `json:"version"`
		CUDA     bool   `json:"cuda"`
		CXX11ABI bool   `json:"cxx11_abi"`
	} `json:"libtorch"`
	Stubbed    []string `json:"stubbed"`
	PreparedAt string   `json:"prepared_at"`
}

// Build returns the description torchbuild compiled into gotch.
func Build() (BuildInfo, error) {
	var b BuildInfo
	if err := json.Unmarshal([]byte(libtch.RobarchBuild), &b); err != nil {
		return b, fmt.Errorf("read torchbuild's description: %w", err)
	}
	return b, nil
}

// Worker runs functions on one goroutine locked to its OS thread.
type Worker struct {
	jobs chan func()
	done chan struct{}
}

// NewWorker starts a worker; Close stops it.
func NewWorker() *Worker {
	w := &Worker{jobs: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(w.done)
		for job := range w.jobs {
			job()
		}
	}()
	return w
}

// Do runs fn on the worker's thread and returns its error; a panic in fn
// comes back as an error rather than killing the process.
func (w *Worker) Do(fn func() error) error {
	errc := make(chan error, 1)
	w.jobs <- func() { errc <- Safely(fn) }
	return <-errc
}

// Close stops the worker after the running job.
func (w *Worker) Close() {
	close(w.jobs)
	<-w.done
}

// Safely runs fn and turns a panic into an error. gotch's Must* helpers
// call log.Fatal, which cannot be recovered: library code uses the
// error-returning variants, and this catches Go panics (nil tensors, index
// errors) around them.
func Safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("torch work panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return fn()
}
