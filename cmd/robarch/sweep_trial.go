package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/robarch/robarch/internal/dist"
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
			e, launched, err := dist.FromEnv(os.Getenv)
			if err != nil {
				return err
			}
			if !launched {
				return fmt.Errorf("sweep trial: no RANK/WORLD_SIZE in the environment: this command is one rank of a data-parallel trial, started by sweep worker")
			}
			format, err := memoryFormat(v)
			if err != nil {
				return err
			}
			quietUnlessRankZero(cmd.ErrOrStderr(), e)
			return workers.ServeRank(cmd.Context(), dir, e, v.GetInt("threads"), format)
		},
	}
	cmd.Flags().String("dir", "", "the trial's folder, holding "+workers.TrialFile)
	return cmd
}
