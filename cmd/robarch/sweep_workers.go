package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"
)

// helperWorkers are the extra `robarch sweep worker` processes that
// `sweep --workers N` starts beside its own worker on the same store.
// Separate processes rather than goroutines: libtorch's thread count and
// OpenMP pools are process-wide in practice, and a trial that crashes
// libtorch takes down only its own worker, whose trial is then re-leased.
type helperWorkers struct {
	cmds []*exec.Cmd
	logs sync.WaitGroup
}

// workerThreads splits threads (0: one per CPU core) among workers,
// at least one each.
func workerThreads(threads, workers int) int {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return max(1, threads/workers)
}

// helperArgs are the command line of one helper: the same store, trial
// folder, lease, sweep, memory format and log level as this worker, no
// per-step lines (their trial-level lines reach this process's log).
type helperArgs struct {
	store, work, sweep, memoryFormat, logLevel string
	lease                                      time.Duration
	threads                                    int
}

func (a helperArgs) argv() []string {
	args := []string{"sweep", "worker", "--store", a.store, "--work", a.work, "--lease", a.lease.String(),
		"--threads", fmt.Sprint(a.threads), "--memory-format", a.memoryFormat, "--log-level", a.logLevel, "--progress", "none"}
	if a.sweep != "" {
		args = append(args, "--name", a.sweep)
	}
	return args
}

// startHelpers starts n helper workers, each writing its log lines,
// prefixed "worker k:", to logTo. On ctx's end they get an interrupt
// (they stop at a step boundary and their trials resume later).
func startHelpers(ctx context.Context, n int, a helperArgs, logTo io.Writer) (*helperWorkers, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--workers: find this program to start helper workers: %w", err)
	}
	h := &helperWorkers{}
	var mu sync.Mutex // one line at a time into logTo
	for k := range n {
		c := exec.CommandContext(ctx, self, a.argv()...)
		c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
		c.WaitDelay = time.Minute
		stderr, err := c.StderrPipe()
		if err != nil {
			h.stop()
			return nil, fmt.Errorf("--workers: helper %d: %w", k+2, err)
		}
		c.Stdout = c.Stderr
		if err := c.Start(); err != nil {
			h.stop()
			return nil, fmt.Errorf("--workers: start helper %d: %w", k+2, err)
		}
		h.cmds = append(h.cmds, c)
		h.logs.Add(1)
		go func(k int) {
			defer h.logs.Done()
			sc := bufio.NewScanner(stderr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				mu.Lock()
				fmt.Fprintf(logTo, "worker %d: %s\n", k, sc.Text())
				mu.Unlock()
			}
		}(k + 2)
	}
	return h, nil
}

// wait waits for every helper and returns their failures, if any.
func (h *helperWorkers) wait() error {
	var errs []error
	for i, c := range h.cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("helper worker %d: %w", i+2, err))
		}
	}
	h.logs.Wait()
	return errors.Join(errs...)
}

// stop interrupts the helpers started so far and waits for them.
func (h *helperWorkers) stop() {
	for _, c := range h.cmds {
		_ = c.Process.Signal(os.Interrupt)
	}
	_ = h.wait()
}
