package main

import (
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/robarch/robarch/internal/doctor"
)

func newDoctorCmd(v *viper.Viper) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check libtorch, the gotch build, devices, threads and BLAS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.OutOrStdout(), v.GetInt("threads"))
		},
	}
}

// runDoctor prints doctor's report; with problems the exit status is 1,
// and the report has said why.
func runDoctor(w io.Writer, threads int) error {
	r, err := doctor.Check(threads)
	if err != nil {
		return err
	}
	r.Write(w)
	if len(r.Problems) > 0 {
		return errSilent
	}
	return nil
}
