package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/robarch/robarch/internal/atomicfile"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep/store"
)

func newResultsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "results", Short: "Read a results store"}
	export := &cobra.Command{
		Use:   "export",
		Short: "Write a store's trials as CSV or JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			f := store.Filter{}
			f.Sweep, _ = cmd.Flags().GetString("sweep")
			f.Factor, _ = cmd.Flags().GetString("factor")
			if st, _ := cmd.Flags().GetString("status"); st != "" {
				f.Status = []results.Status{results.Status(st)}
			}
			trials, err := s.List(cmd.Context(), f)
			if err != nil {
				return err
			}
			format, _ := cmd.Flags().GetString("format")
			out := cmd.OutOrStdout()
			if path, _ := cmd.Flags().GetString("out"); path != "" {
				return atomicfile.Write(path, 0o644, func(w io.Writer) error { return store.Export(w, format, trials) })
			}
			return store.Export(out, format, trials)
		},
	}
	export.Flags().String("store", "results.db", "results store: a SQLite file or postgres://...")
	export.Flags().String("format", "csv", "csv or json")
	export.Flags().String("sweep", "", "only this sweep")
	export.Flags().String("factor", "", "only this factor")
	export.Flags().String("status", "", "only trials in this status: pending, running, done, failed")
	export.Flags().String("out", "", "write to this file (atomically) instead of stdout")
	cmd.AddCommand(export)
	return cmd
}
