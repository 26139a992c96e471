package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/robarch/robarch/arch"
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

// archListEntry is one line of `arch list --json`.
type archListEntry struct {
	Name        string `json:"name"`
	Params      int64  `json:"params"`
	MACs        int64  `json:"macs"`
	Input       string `json:"input"`
	Description string `json:"description,omitempty"`
}

func runArchList(w io.Writer, asJSON bool) error {
	var entries []archListEntry
	for _, name := range arch.List() {
		s, err := arch.Get(name)
		if err != nil {
			return err
		}
		l, err := arch.Resolve(s)
		if err != nil {
			return fmt.Errorf("preset %s: %w", name, err)
		}
		entries = append(entries, archListEntry{
			Name: name, Params: l.Total.Params, MACs: l.Total.MACs,
			Input: archInputString(s.Input), Description: s.Description,
		})
	}
	if asJSON {
		return archWriteJSON(w, entries)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPARAMS\tMACS\tINPUT\tDESCRIPTION")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, arch.FormatBudget(e.Params), arch.FormatBudget(e.MACs), e.Input, e.Description)
	}
	return tw.Flush()
}

func newArchShowCmd() *cobra.Command {
	var (
		budget, input string
		tolerance     float64
		scaleDepth    bool
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "show NAME|FILE",
		Short: "Show a preset or spec file: the spec, a per-stage table, exact parameters and MACs",
		Example: `  robarch arch show robarch-s
  robarch arch show resnet50 --budget 26M --input 3x64x64
  robarch arch show my-spec.yaml --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := arch.GetOrLoad(args[0])
			if err != nil {
				return err
			}
			if input != "" {
				c, h, wd, err := arch.ParseInput(input)
				if err != nil {
					return fmt.Errorf("--input: %w", err)
				}
				if c > 0 && c != s.Input.Channels {
					// Per-channel normalisation no longer applies.
					s.Input.Channels, s.Input.Mean, s.Input.Std = c, nil, nil
				}
				s.Input.Height, s.Input.Width = h, wd
			}
			var fit *archFit
			if budget != "" {
				n, err := arch.ParseBudget(budget)
				if err != nil {
					return fmt.Errorf("--budget: %w", err)
				}
				fitted, got, err := arch.Fit(s, n, arch.FitOptions{Tolerance: tolerance, ScaleDepth: scaleDepth})
				if err != nil {
					return err
				}
				fit = &archFit{Budget: n, Tolerance: tolerance, ScaleDepth: scaleDepth, Params: got}
				if fit.Tolerance == 0 {
					fit.Tolerance = arch.DefaultTolerance
				}
				s = fitted
			}
			l, err := arch.Resolve(s)
			if err != nil {
				return err
			}
			if asJSON {
				return archWriteJSON(cmd.OutOrStdout(), archShowJSON(l, fit))
			}
			return printArch(cmd.OutOrStdout(), l, fit)
		},
	}
	f := cmd.Flags()
	f.StringVar(&budget, "budget", "", "fit the stage widths to this parameter count (26M, 500K, 1.5M, 26143228)")
	f.Float64Var(&tolerance, "tolerance", 0, "relative tolerance of --budget (0 = 0.02)")
	f.BoolVar(&scaleDepth, "scale-depth", false, "with --budget, scale depths as well as widths")
	f.StringVar(&input, "input", "", "input shape CxHxW or HxW (default: the spec's)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object: name, params, macs, spec, input, stages, fit")
	return cmd
}

// archFit describes a --budget fit in the output.
type archFit struct {
	Budget     int64   `json:"budget"`
	Tolerance  float64 `json:"tolerance"`
	ScaleDepth bool    `json:"scale_depth"`
	Params     int64   `json:"params"`
}

// archStageRow is one row of the per-stage table.
type archStageRow struct {
	Stage      string `json:"stage"`
	Block      string `json:"block"`
	Depth      int    `json:"depth"`
	Width      int    `json:"width"`
	Bottleneck int    `json:"bottleneck_width"`
	Groups     int    `json:"groups"`
	Kernel     int    `json:"kernel"`
	Stride     int    `json:"stride"`
	Output     string `json:"output"`
	Params     int64  `json:"params"`
	MACs       int64  `json:"macs"`
}

func archStageRows(l arch.Layout) []archStageRow {
	st := l.Stem
	stemName := "stem"
	if st.MaxPool {
		stemName = "stem+pool"
	}
	rows := []archStageRow{{
		Stage: stemName, Block: l.Spec.Stem.Kind, Depth: 1, Width: st.Out, Kernel: st.Kernel, Stride: st.Stride,
		Output: fmt.Sprintf("%dx%dx%d", st.Out, st.OutH, st.OutW), Params: st.Count.Params, MACs: st.Count.MACs,
	}}
	for i, sl := range l.Stages {
		b := sl.Blocks[0]
		rows = append(rows, archStageRow{
			Stage: fmt.Sprintf("stage%d", i+1), Block: b.Kind, Depth: len(sl.Blocks), Width: b.Out,
			Bottleneck: b.Mid, Groups: b.Groups, Kernel: b.Kernel, Stride: b.Stride,
			Output: fmt.Sprintf("%dx%dx%d", b.Out, sl.OutH, sl.OutW), Params: sl.Count.Params, MACs: sl.Count.MACs,
		})
	}
	rows = append(rows, archStageRow{
		Stage: "head", Block: "fc", Depth: 1, Width: l.Spec.Classes,
		Output: fmt.Sprint(l.Spec.Classes), Params: l.Head.Params, MACs: l.Head.MACs,
	})
	return rows
}

func archShowJSON(l arch.Layout, fit *archFit) any {
	return struct {
		Name       string         `json:"name"`
		Params     int64          `json:"params"`
		MACs       int64          `json:"macs"`
		Input      string         `json:"input"`
		WidthDepth float64        `json:"width_depth_ratio"`
		Fit        *archFit       `json:"fit,omitempty"`
		Stages     []archStageRow `json:"stages"`
		Spec       arch.Spec      `json:"spec"`
	}{l.Spec.Name, l.Total.Params, l.Total.MACs, archInputString(l.Spec.Input), arch.WidthDepthRatio(l.Spec), fit, archStageRows(l), l.Spec}
}

func printArch(w io.Writer, l arch.Layout, fit *archFit) error {
	y, err := arch.EncodeYAML(l.Spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# %s\n%s\n", l.Spec.Name, y)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "STAGE\tBLOCK\tDEPTH\tWIDTH\tBOTTLENECK\tGROUPS\tKERNEL\tSTRIDE\tOUTPUT\tPARAMS\tMACS\t")
	for _, r := range archStageRows(l) {
		bw, groups := "-", "-"
		if r.Bottleneck > 0 {
			bw, groups = fmt.Sprint(r.Bottleneck), fmt.Sprint(r.Groups)
		}
		kernel, stride := "-", "-"
		if r.Kernel > 0 {
			kernel, stride = fmt.Sprint(r.Kernel), fmt.Sprint(r.Stride)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n",
			r.Stage, r.Block, r.Depth, r.Width, bw, groups, kernel, stride, r.Output, r.Params, r.MACs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ninput   %s\nparams  %d (%s)\nmacs    %d (%s)\n", archInputString(l.Spec.Input),
		l.Total.Params, arch.FormatBudget(l.Total.Params), l.Total.MACs, arch.FormatBudget(l.Total.MACs))
	if fit != nil {
		fmt.Fprintf(w, "fit     budget %s ±%g%%: %+.2f%%\n", arch.FormatBudget(fit.Budget), 100*fit.Tolerance,
			100*float64(fit.Params-fit.Budget)/float64(fit.Budget))
	}
	return nil
}

func archInputString(in arch.Input) string {
	return fmt.Sprintf("%dx%dx%d", in.Channels, in.Height, in.Width)
}

func archWriteJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, strings.TrimSpace(string(data)))
	return err
}
