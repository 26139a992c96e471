package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/robarch/robarch/internal/atomicfile"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/sweeprun"
)

// Files a data-parallel trial's processes share in its folder: the trial
// they run, and the metrics rank 0 leaves for the worker.
const (
	trialFile        = "trial.json"
	trialMetricsFile = "trial-metrics.json"
)

// processTrials runs a trial of a sweep with nproc_per_trial > 1 as that
// many local processes of `robarch sweep trial` (one data-parallel job),
// and any other trial with run, in this process. The worker keeps the
// lease meanwhile; an interrupted or failed job resumes from the trial's
// checkpoints on its next claim.
func processTrials(run sweeprun.TrialFunc, threads int, format, logLevel string, logTo io.Writer) sweeprun.TrialFunc {
	return func(ctx context.Context, t results.Trial, cfg sweep.TrialConfig, dir string) (map[string]float64, error) {
		n := cfg.Sweep.NprocPerTrial
		if n <= 1 {
			return run(ctx, t, cfg, dir)
		}
		raw, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("data-parallel trial: %w", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, trialFile), raw, 0o644); err != nil {
			return nil, fmt.Errorf("data-parallel trial: %w", err)
		}
		metricsPath := filepath.Join(dir, trialMetricsFile)
		if err := os.Remove(metricsPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("data-parallel trial: %w", err)
		}
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("data-parallel trial: find this program: %w", err)
		}
		each := workerThreads(threads, n)
		args := []string{"--threads", fmt.Sprint(each), "--memory-format", format, "--log-level", logLevel,
			"sweep", "trial", "--dir", dir}
		slog.Info("trial starts data-parallel", "trial", t.Key(), "nproc", n, "threads_each", each)
		if err := (dist.Launch{N: n, Exe: exe, Args: args, Stdout: logTo, Stderr: logTo}).Run(ctx); err != nil {
			return nil, fmt.Errorf("data-parallel trial on %d processes: %w", n, err)
		}
		b, err := os.ReadFile(metricsPath)
		if err != nil {
			return nil, fmt.Errorf("data-parallel trial: rank 0 left no metrics: %w", err)
		}
		var metrics map[string]float64
		if err := json.Unmarshal(b, &metrics); err != nil {
			return nil, fmt.Errorf("data-parallel trial: %s: %w", metricsPath, err)
		}
		return metrics, nil
	}
}

// newSweepTrialCmd is one rank of a data-parallel trial, started by a
// worker (processTrials); it is not for people to type.
func newSweepTrialCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "trial",
		Short:  "Run one rank of a data-parallel sweep trial (started by sweep worker)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _ := cmd.Flags().GetString("dir")
			return runTrialRank(cmd.Context(), v, cmd.ErrOrStderr(), dir)
		},
	}
	cmd.Flags().String("dir", "", "the trial's folder, holding "+trialFile)
	return cmd
}

func runTrialRank(ctx context.Context, v *viper.Viper, stderr io.Writer, dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, trialFile))
	if err != nil {
		return fmt.Errorf("sweep trial: %w", err)
	}
	var t results.Trial
	if err := json.Unmarshal(raw, &t); err != nil {
		return fmt.Errorf("sweep trial: %s: %w", trialFile, err)
	}
	cfg, err := sweep.DecodeTrialConfig(t)
	if err != nil {
		return err
	}
	e, launched, err := dist.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if !launched {
		return fmt.Errorf("sweep trial: no RANK/WORLD_SIZE in the environment: this command is one rank of a data-parallel trial, started by sweep worker")
	}
	threads := v.GetInt("threads")
	group, err := joinGroup(stderr, "data-parallel trial", e, dist.DefaultTimeout, &threads)
	if err != nil {
		return err
	}
	defer group.Close()
	rt := torchrt.Init(threads)
	slog.Debug("torch runtime", "malloc", rt.Malloc, "sysmon", rt.Sysmon)
	format, err := memoryFormat(v)
	if err != nil {
		return err
	}
	exec := newExecutor(format)
	exec.Group, exec.LogEvery = group, -1
	metrics, err := exec.Run(ctx, t, cfg, dir)
	if err != nil {
		return err
	}
	if group.Rank() != 0 {
		return nil
	}
	out, err := json.Marshal(metrics)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, trialMetricsFile), out, 0o644)
}
