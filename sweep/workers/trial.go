package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/robarch/robarch/arch/model"
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
	TrialFile   = "trial.json"
	MetricsFile = "trial-metrics.json"
)

// DataParallel runs a trial of a sweep with nproc_per_trial > 1 as that
// many local processes of `robarch sweep trial` (one data-parallel job,
// each rank running RunRank), and any other trial with Run, in this
// process. The worker keeps the lease meanwhile; an interrupted or failed
// job resumes from the trial's checkpoints on its next claim.
type DataParallel struct {
	Run sweeprun.TrialFunc
	Exe string // the program the ranks run; "": this one
	// Threads are this worker's, split among a trial's processes;
	// MemoryFormat and LogLevel are passed on to them.
	Threads                int
	MemoryFormat, LogLevel string
	LogTo                  io.Writer // the ranks' output lines
}

// Args is the command line of a data-parallel trial's ranks.
func (d DataParallel) Args(threads int, dir string) []string {
	return []string{"--threads", fmt.Sprint(threads), "--memory-format", d.MemoryFormat, "--log-level", d.LogLevel,
		"sweep", "trial", "--dir", dir}
}

// Trial is a sweeprun.TrialFunc.
func (d DataParallel) Trial(ctx context.Context, t results.Trial, cfg sweep.TrialConfig, dir string) (map[string]float64, error) {
	n := cfg.Sweep.NprocPerTrial
	if n <= 1 {
		return d.Run(ctx, t, cfg, dir)
	}
	if err := writeTrial(dir, t); err != nil {
		return nil, fmt.Errorf("data-parallel trial: %w", err)
	}
	exe := d.Exe
	if exe == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("data-parallel trial: find this program: %w", err)
		}
		exe = self
	}
	each := Threads(d.Threads, n)
	slog.Info("trial starts data-parallel", "trial", t.Key(), "nproc", n, "threads_each", each)
	if err := (dist.Launch{N: n, Exe: exe, Args: d.Args(each, dir), Stdout: d.LogTo, Stderr: d.LogTo}).Run(ctx); err != nil {
		return nil, fmt.Errorf("data-parallel trial on %d processes: %w", n, err)
	}
	return readMetrics(dir)
}

// writeTrial leaves t in dir for the ranks, and removes the metrics of
// an earlier launch.
func writeTrial(dir string, t results.Trial) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, TrialFile), raw, 0o644); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, MetricsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ReadTrial is the trial a data-parallel job runs in dir, and its
// configuration.
func ReadTrial(dir string) (results.Trial, sweep.TrialConfig, error) {
	var t results.Trial
	raw, err := os.ReadFile(filepath.Join(dir, TrialFile))
	if err != nil {
		return t, sweep.TrialConfig{}, fmt.Errorf("sweep trial: %w", err)
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return t, sweep.TrialConfig{}, fmt.Errorf("sweep trial: %s: %w", TrialFile, err)
	}
	cfg, err := sweep.DecodeTrialConfig(t)
	return t, cfg, err
}

// ServeRank is one rank of the data-parallel trial in dir, started by a
// worker (DataParallel) with the launcher's environment: it joins the
// group (threads: 0 for cores ÷ local processes) and runs RunRank.
func ServeRank(ctx context.Context, dir string, e dist.Env, threads int, f model.MemoryFormat) error {
	t, cfg, err := ReadTrial(dir)
	if err != nil {
		return err
	}
	group, threads, err := dist.JoinLaunched("data-parallel trial", e, dist.DefaultTimeout, threads)
	if err != nil {
		return err
	}
	defer group.Close()
	rt := torchrt.Init(threads)
	slog.Debug("torch runtime", "malloc", rt.Malloc, "sysmon", rt.Sysmon)
	return RunRank(ctx, sweeprun.NewExecutor(f), group, t, cfg, dir)
}

// RunRank runs this process's rank of the data-parallel trial t in dir
// with exec, on group; rank 0 leaves the metrics for the worker.
func RunRank(ctx context.Context, exec *sweeprun.Executor, group *dist.Group, t results.Trial, cfg sweep.TrialConfig, dir string) error {
	exec.Group, exec.LogEvery = group, -1
	metrics, err := exec.Run(ctx, t, cfg, dir)
	if err != nil || group.Rank() != 0 {
		return err
	}
	return writeMetrics(dir, metrics)
}

func writeMetrics(dir string, metrics map[string]float64) error {
	out, err := json.Marshal(metrics)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, MetricsFile), out, 0o644)
}

func readMetrics(dir string) (map[string]float64, error) {
	path := filepath.Join(dir, MetricsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data-parallel trial: rank 0 left no metrics: %w", err)
	}
	var metrics map[string]float64
	if err := json.Unmarshal(b, &metrics); err != nil {
		return nil, fmt.Errorf("data-parallel trial: %s: %w", path, err)
	}
	return metrics, nil
}
