package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/robarch/robarch/internal/archview"
)

func newArchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "arch",
		Short: "List and inspect architectures: presets or spec files, exact parameters and MACs, budget fitting",
	}
	cmd.AddCommand(newArchListCmd(), newArchShowCmd())
	return cmd
}

func newArchListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the preset architectures with their parameter counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runArchList(cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of {name, params, macs, input, description}")
	return cmd
}

func runArchList(w io.Writer, asJSON bool) error {
	entries, err := archview.Presets()
	if err != nil {
		return err
	}
	if asJSON {
		return archWriteJSON(w, entries)
	}
	return archview.WriteList(w, entries)
}

func newArchShowCmd() *cobra.Command {
	var (
		o      archview.ShowOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show NAME|FILE",
		Short: "Show a preset or spec file: the spec, a per-stage table, exact parameters and MACs",
		Example: `  robarch arch show robarch-s
  robarch arch show resnet50 --budget 26M --input 3x64x64
  robarch arch show my-spec.yaml --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, fit, err := archview.Show(args[0], o)
			if err != nil {
				return err
			}
			if asJSON {
				return archWriteJSON(cmd.OutOrStdout(), archview.JSON(l, fit))
			}
			return archview.WriteShow(cmd.OutOrStdout(), l, fit)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Budget, "budget", "", "fit the stage widths to this parameter count (26M, 500K, 1.5M, 26143228)")
	f.Float64Var(&o.Tolerance, "tolerance", 0, "relative tolerance of --budget (0 = 0.02)")
	f.BoolVar(&o.ScaleDepth, "scale-depth", false, "with --budget, scale depths as well as widths")
	f.StringVar(&o.Input, "input", "", "input shape CxHxW or HxW (default: the spec's)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object: name, params, macs, spec, input, stages, fit")
	return cmd
}

func archWriteJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, strings.TrimSpace(string(data)))
	return err
}
