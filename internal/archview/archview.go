// Package archview is what robarch arch shows of an architecture: the
// presets with their sizes, a spec at another input or fitted to a
// budget, its per-stage table and its JSON.
package archview

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/robarch/robarch/arch"
)

// Entry is a preset, one line of `arch list` (and of its JSON).
type Entry struct {
	Name        string `json:"name"`
	Params      int64  `json:"params"`
	MACs        int64  `json:"macs"`
	Input       string `json:"input"`
	Description string `json:"description,omitempty"`
}

// Presets are the preset architectures with their exact sizes.
func Presets() ([]Entry, error) {
	var entries []Entry
	for _, name := range arch.List() {
		s, err := arch.Get(name)
		if err != nil {
			return nil, err
		}
		l, err := arch.Resolve(s)
		if err != nil {
			return nil, fmt.Errorf("preset %s: %w", name, err)
		}
		entries = append(entries, Entry{
			Name: name, Params: l.Total.Params, MACs: l.Total.MACs,
			Input: InputString(s.Input), Description: s.Description,
		})
	}
	return entries, nil
}

// WriteList writes the presets as `arch list`'s table.
func WriteList(w io.Writer, entries []Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPARAMS\tMACS\tINPUT\tDESCRIPTION")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, arch.FormatBudget(e.Params), arch.FormatBudget(e.MACs), e.Input, e.Description)
	}
	return tw.Flush()
}

// ShowOptions change the architecture shown: Input (CxHxW or HxW; "" the
// spec's) and a Budget to fit the widths (and with ScaleDepth the depths)
// to, within Tolerance (0: arch.DefaultTolerance).
type ShowOptions struct {
	Input, Budget string
	Tolerance     float64
	ScaleDepth    bool
}

// Show resolves a preset or spec file as o asks, and the fit when there
// is a budget. Errors name o's fields as arch show's flags.
func Show(nameOrFile string, o ShowOptions) (arch.Layout, *Fit, error) {
	s, err := arch.GetOrLoad(nameOrFile)
	if err != nil {
		return arch.Layout{}, nil, err
	}
	if o.Input != "" {
		c, h, w, err := arch.ParseInput(o.Input)
		if err != nil {
			return arch.Layout{}, nil, fmt.Errorf("--input: %w", err)
		}
		if c > 0 && c != s.Input.Channels {
			// Per-channel normalisation no longer applies.
			s.Input.Channels, s.Input.Mean, s.Input.Std = c, nil, nil
		}
		s.Input.Height, s.Input.Width = h, w
	}
	var fit *Fit
	if o.Budget != "" {
		n, err := arch.ParseBudget(o.Budget)
		if err != nil {
			return arch.Layout{}, nil, fmt.Errorf("--budget: %w", err)
		}
		fitted, got, err := arch.Fit(s, n, arch.FitOptions{Tolerance: o.Tolerance, ScaleDepth: o.ScaleDepth})
		if err != nil {
			return arch.Layout{}, nil, err
		}
		fit = &Fit{Budget: n, Tolerance: o.Tolerance, ScaleDepth: o.ScaleDepth, Params: got}
		if fit.Tolerance == 0 {
			fit.Tolerance = arch.DefaultTolerance
		}
		s = fitted
	}
	l, err := arch.Resolve(s)
	return l, fit, err
}

// Fit describes a budget fit in the output.
type Fit struct {
	Budget     int64   `json:"budget"`
	Tolerance  float64 `json:"tolerance"`
	ScaleDepth bool    `json:"scale_depth"`
	Params     int64   `json:"params"`
}

// StageRow is one row of the per-stage table.
type StageRow struct {
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

func StageRows(l arch.Layout) []StageRow {
	st := l.Stem
	stemName := "stem"
	if st.MaxPool {
		stemName = "stem+pool"
	}
	rows := []StageRow{{
		Stage: stemName, Block: l.Spec.Stem.Kind, Depth: 1, Width: st.Out, Kernel: st.Kernel, Stride: st.Stride,
		Output: fmt.Sprintf("%dx%dx%d", st.Out, st.OutH, st.OutW), Params: st.Count.Params, MACs: st.Count.MACs,
	}}
	for i, sl := range l.Stages {
		b := sl.Blocks[0]
		rows = append(rows, StageRow{
			Stage: fmt.Sprintf("stage%d", i+1), Block: b.Kind, Depth: len(sl.Blocks), Width: b.Out,
			Bottleneck: b.Mid, Groups: b.Groups, Kernel: b.Kernel, Stride: b.Stride,
			Output: fmt.Sprintf("%dx%dx%d", b.Out, sl.OutH, sl.OutW), Params: sl.Count.Params, MACs: sl.Count.MACs,
		})
	}
	rows = append(rows, StageRow{
		Stage: "head", Block: "fc", Depth: 1, Width: l.Spec.Classes,
		Output: fmt.Sprint(l.Spec.Classes), Params: l.Head.Params, MACs: l.Head.MACs,
	})
	return rows
}

// JSON is what `arch show --json` prints.
func JSON(l arch.Layout, fit *Fit) any {
	return struct {
		Name       string     `json:"name"`
		Params     int64      `json:"params"`
		MACs       int64      `json:"macs"`
		Input      string     `json:"input"`
		WidthDepth float64    `json:"width_depth_ratio"`
		Fit        *Fit       `json:"fit,omitempty"`
		Stages     []StageRow `json:"stages"`
		Spec       arch.Spec  `json:"spec"`
	}{l.Spec.Name, l.Total.Params, l.Total.MACs, InputString(l.Spec.Input), arch.WidthDepthRatio(l.Spec), fit, StageRows(l), l.Spec}
}

// WriteShow writes `arch show`: the spec as YAML, the per-stage table,
// the totals and the fit.
func WriteShow(w io.Writer, l arch.Layout, fit *Fit) error {
	y, err := arch.EncodeYAML(l.Spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# %s\n%s\n", l.Spec.Name, y)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "STAGE\tBLOCK\tDEPTH\tWIDTH\tBOTTLENECK\tGROUPS\tKERNEL\tSTRIDE\tOUTPUT\tPARAMS\tMACS\t")
	for _, r := range StageRows(l) {
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
	fmt.Fprintf(w, "\ninput   %s\nparams  %d (%s)\nmacs    %d (%s)\n", InputString(l.Spec.Input),
		l.Total.Params, arch.FormatBudget(l.Total.Params), l.Total.MACs, arch.FormatBudget(l.Total.MACs))
	if fit != nil {
		fmt.Fprintf(w, "fit     budget %s ±%g%%: %+.2f%%\n", arch.FormatBudget(fit.Budget), 100*fit.Tolerance,
			100*float64(fit.Params-fit.Budget)/float64(fit.Budget))
	}
	return nil
}

// InputString is an input shape as CxHxW.
func InputString(in arch.Input) string {
	return fmt.Sprintf("%dx%dx%d", in.Channels, in.Height, in.Width)
}
