package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/robarch/robarch/internal/dist"
)

// launchLocal starts n copies of this command as the ranks of one job on
// this machine and waits for them (torchrun's standalone mode, without
// Python). out, when set, is the run directory an interrupted run resumes.
func launchLocal(ctx context.Context, stdout, stderr io.Writer, n int, out string) error {
	slog.Info("starting processes", "nproc_per_node", n)
	err := dist.Launch{N: n, Stdout: stdout, Stderr: stderr}.Run(ctx)
	if errors.Is(err, context.Canceled) && out != "" {
		return fmt.Errorf("interrupted (%w): finished epochs are checkpointed in %s; rerun the same command with --resume to continue", err, out)
	}
	return err
}

// joinGroup makes this process a rank of the launched job.
func joinGroup(stderr io.Writer, what string, e dist.Env, timeout time.Duration, threads *int) (*dist.Group, error) {
	quietUnlessRankZero(stderr, e)
	g, n, err := dist.JoinLaunched(what, e, timeout, *threads)
	*threads = n
	return g, err
}

// quietUnlessRankZero makes ranks other than 0 log warnings only: one
// voice in the log.
func quietUnlessRankZero(stderr io.Writer, e dist.Env) {
	if e.Rank > 0 {
		slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
}
