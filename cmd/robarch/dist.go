package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/robarch/robarch/internal/dist"
)

// launchLocal starts n copies of this command as the ranks of one job on
// this machine and waits for them (torchrun's standalone mode, without
// Python). out, when set, is the run directory an interrupted run resumes.
func launchLocal(ctx context.Context, stdout, stderr io.Writer, n int, out string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--nproc-per-node: find this program: %w", err)
	}
	slog.Info("starting processes", "nproc_per_node", n)
	err = dist.Launch{N: n, Exe: exe, Args: os.Args[1:], Stdout: stdout, Stderr: stderr}.Run(ctx)
	if errors.Is(err, context.Canceled) && out != "" {
		return fmt.Errorf("interrupted (%w): finished epochs are checkpointed in %s; rerun the same command with --resume to continue", err, out)
	}
	return err
}

// joinGroup makes this process a rank of the launched job (what names
// it in the log: data-parallel, sharded evaluation): threads
// default to cores ÷ local processes, ranks other than 0 log warnings
// only (one voice), and the process group is joined.
func joinGroup(stderr io.Writer, what string, e dist.Env, timeout time.Duration, threads *int) (*dist.Group, error) {
	if *threads == 0 {
		*threads = max(1, runtime.NumCPU()/e.LocalWorld)
	}
	if e.Rank > 0 {
		slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
	slog.Info(what, "launcher", e.Launcher, "world", e.World, "rank", e.Rank,
		"store", fmt.Sprintf("%s:%d", e.Addr, e.Port), "threads_per_process", *threads)
	g, err := dist.Join(e, timeout)
	if err != nil {
		return nil, err
	}
	return g, nil
}
