package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/robarch/robarch/internal/amp"
)

// WriteJSON writes one JSON object per workload, one per line (JSON
// Lines), for tracking tools.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	for _, res := range r.Results {
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("write bench JSON: %w", err)
		}
	}
	return nil
}

// WriteTable writes the report as a table for the terminal.
func WriteTable(w io.Writer, r *Report) error {
	peer := false
	for _, res := range r.Results {
		peer = peer || res.PeerImagesPerS > 0
	}
	fmt.Fprintf(w, "model %s: %s params, %.1f MMACs/image at %s; batch %d, %d threads; matmul ceiling %.1f GFLOP/s",
		r.Model, humanCount(r.Params), float64(r.MACs)/1e6, r.Input, r.Batch, r.Threads, r.CeilingGFLOPS)
	if r.Torch != "" {
		fmt.Fprintf(w, "; peer: PyTorch %s eager", r.Torch)
	}
	if r.Malloc != "" {
		fmt.Fprintf(w, "; malloc: %s", r.Malloc)
		if r.MallocArenas > 0 {
			fmt.Fprintf(w, ", %d in use", r.MallocArenas)
		}
	}
	if r.Sysmon != "" {
		fmt.Fprintf(w, "; Go sysmon: %s", r.Sysmon)
	}
	if r.MemoryFormat != "" {
		fold := "batch norms folded in pgd10/apgd-ce/infer"
		if !r.FoldBN {
			fold = "batch norms not folded"
		}
		fmt.Fprintf(w, "; robarch: %s weights, %s forward, %s", r.MemoryFormat, orFP32(r.Precision), fold)
		if r.PeerMemoryFormat != "" {
			fmt.Fprintf(w, "; PyTorch: %s weights, %s forward", r.PeerMemoryFormat, orFP32(r.PeerPrecision))
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "images/s", "[min, max]", "GFLOP/s", "of ceiling", "peak RSS", "RSS growth", "(steps)"}
	if peer {
		head = append(head, "PyTorch img/s", "[min, max]", "PyTorch of ceiling", "ratio")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, res := range r.Results {
		row := []string{
			string(res.Workload),
			fmt.Sprintf("%.1f", res.ImagesPerS),
			fmt.Sprintf("[%.1f, %.1f]", res.Spread.Min, res.Spread.Max),
			gflops(res.GFLOPS, res.Passes),
			percent(res.CeilingFraction, res.Passes),
			fmt.Sprintf("%.0f MiB", float64(res.PeakRSSBytes)/(1<<20)),
			fmt.Sprintf("%+.1f%%", 100*res.RSSGrowth),
			fmt.Sprint(res.RSSGrowthSteps),
		}
		if peer {
			if res.PeerSpread != nil {
				row = append(row,
					fmt.Sprintf("%.1f", res.PeerImagesPerS),
					fmt.Sprintf("[%.1f, %.1f]", res.PeerSpread.Min, res.PeerSpread.Max),
					percent(res.PeerCeilingFraction, res.Passes),
					fmt.Sprintf("%.2fx", res.Ratio))
			} else {
				row = append(row, "-", "-", "-", "-")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	return tw.Flush()
}

func orFP32(p amp.Precision) amp.Precision {
	if p == "" {
		return amp.FP32
	}
	return p
}

func gflops(v, passes float64) string {
	if passes == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func percent(v, passes float64) string {
	if passes == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}

// humanCount writes 272474 as 0.27M.
func humanCount(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
