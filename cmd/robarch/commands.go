package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// commands lists the subcommands; each lives in its own *_cmd.go file.
func commands(v *viper.Viper) []*cobra.Command {
	return []*cobra.Command{
		newDoctorCmd(v),
		newArchCmd(),
		newTrainCmd(v),
		newSweepCmd(v),
		newResultsCmd(),
		newGuidelinesCmd(),
		newEvalCmd(),
		newExportCmd(),
		newBenchCmd(v),
		newDataCmd(),
	}
}
