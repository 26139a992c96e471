package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/sweep/workers"
)

// newSweepTrialCmd is one rank of a data-parallel trial, started by a
// worker (workers.DataParallel); it is not for people to type.
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
	cmd.Flags().String("dir", "", "the trial's folder, holding "+workers.TrialFile)
	return cmd
}

func runTrialRank(ctx context.Context, v *viper.Viper, stderr io.Writer, dir string) error {
	t, cfg, err := workers.ReadTrial(dir)
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
	return workers.RunRank(ctx, newExecutor(format), group, t, cfg, dir)
}
