// Package workers runs a sweep's trials on one machine: helper worker
// processes beside this one on the same store (StartHelpers), the threads
// split among them (Threads), data-parallel trials as local processes
// (DataParallel, RunRank), and all of it together (Local).
//
// Helpers and ranks are this program run again with robarch's command
// lines (`robarch sweep worker`, `robarch sweep trial`): separate
// processes rather than goroutines, because libtorch's thread count and
// OpenMP pools are process-wide in practice, and a trial that crashes
// libtorch takes down only its own process.
package workers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/robarch/robarch/internal/dist"
)

// Threads splits threads (0: one per CPU core) among n processes, at
// least one each.
func Threads(threads, n int) int {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return max(1, threads/max(1, n))
}

// Helper is what a helper worker shares with the worker that starts it:
// the same store, trial folder, lease, sweep ("" any), memory format and
// log level, and its threads.
type Helper struct {
	Store, Work, Sweep, MemoryFormat, LogLevel string
	Lease                                      time.Duration
	Threads                                    int
}

// Args is a helper's command line: `robarch sweep worker` without
// per-step lines (its trial-level lines reach the starting worker's log).
func (h Helper) Args() []string {
	args := []string{"sweep", "worker", "--store", h.Store, "--work", h.Work, "--lease", h.Lease.String(),
		"--threads", fmt.Sprint(h.Threads), "--memory-format", h.MemoryFormat, "--log-level", h.LogLevel, "--progress", "none"}
	if h.Sweep != "" {
		args = append(args, "--name", h.Sweep)
	}
	return args
}

// Helpers are running helper workers, numbered from 2 (the starting
// worker is 1).
type Helpers struct {
	cmds []*exec.Cmd
	outs []io.Closer // each helper's prefixed output (dist.PrefixLines)
}

// StartHelpers starts n helper workers running exe (""; this program)
// with h's command line, each writing its output lines, prefixed
// "worker k: ", to logTo. On ctx's end they get an interrupt: they stop
// at a step boundary and their trials resume later.
func StartHelpers(ctx context.Context, exe string, n int, h Helper, logTo io.Writer) (*Helpers, error) {
	if exe == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this program to start helper workers: %w", err)
		}
		exe = self
	}
	hs := &Helpers{}
	var mu sync.Mutex // one line at a time into logTo
	for k := 2; k < n+2; k++ {
		c := exec.CommandContext(ctx, exe, h.Args()...)
		c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
		c.WaitDelay = time.Minute
		out := dist.PrefixLines(&mu, logTo, fmt.Sprintf("worker %d: ", k))
		c.Stdout, c.Stderr = out, out
		if err := c.Start(); err != nil {
			_ = out.Close()
			hs.Stop()
			return nil, fmt.Errorf("start helper %d: %w", k, err)
		}
		hs.cmds = append(hs.cmds, c)
		hs.outs = append(hs.outs, out)
	}
	return hs, nil
}

// Wait waits for every helper and returns their failures, if any, with
// their output written to its last line.
func (h *Helpers) Wait() error {
	var errs []error
	for i, c := range h.cmds {
		err := c.Wait() // after the copy of its output to h.outs[i]
		_ = h.outs[i].Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("helper worker %d: %w", i+2, err))
		}
	}
	return errors.Join(errs...)
}

// Stop interrupts the helpers started so far and waits for them.
func (h *Helpers) Stop() {
	for _, c := range h.cmds {
		_ = c.Process.Signal(os.Interrupt)
	}
	_ = h.Wait()
}
