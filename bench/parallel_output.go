package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteParallelJSON writes one JSON object per workload (JSON Lines).
func WriteParallelJSON(w io.Writer, r *ParallelReport) error {
	enc := json.NewEncoder(w)
	for _, res := range r.Results {
		line := struct {
			ParallelResult
			MemoryFormat     string `json:"memory_format"`
			PeerMemoryFormat string `json:"peer_memory_format,omitempty"`
			Precision        string `json:"precision"`
			PeerPrecision    string `json:"peer_precision,omitempty"`
			PeerMalloc       string `json:"peer_malloc,omitempty"`
			Torch            string `json:"peer_torch,omitempty"`
		}{res, string(r.MemoryFormat), string(r.PeerMemoryFormat), string(r.Precision), string(r.PeerPrecision), string(r.PeerMalloc), r.Torch}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("write bench JSON: %w", err)
		}
	}
	return nil
}

// configLabels name the configurations in the table.
var configLabels = map[string]string{
	robarchDDP: "robarch, %d proc × %d thr (Gloo)", robarchSingle: "robarch, %d proc × %d thr",
	pytorchDDP: "PyTorch DDP, %d proc × %d thr (Gloo)", pytorchSingle: "PyTorch, %d proc × %d thr",
}

// WriteParallelTable writes a data-parallel bench for the terminal.
func WriteParallelTable(w io.Writer, r *ParallelReport) error {
	fmt.Fprintf(w, "model %s: %s params, %.1f MMACs/image at %s; %d processes × %d threads, batch %d per process, 127.0.0.1; robarch: %s weights, %s forward",
		r.Model, humanCount(r.Params), float64(r.MACs)/1e6, r.Input, r.Nproc, r.ThreadsPerProcess, r.Batch, r.MemoryFormat, orFP32(r.Precision))
	if r.Torch != "" {
		fmt.Fprintf(w, "; PyTorch %s: %s weights, %s forward, %s, DDP under torchrun", r.Torch, r.PeerMemoryFormat, orFP32(r.PeerPrecision), peerMallocText(r.PeerMalloc))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tconfiguration\tstep ms\t[min, max]\timages/s\tallreduce ms\tshare\toverlapped ms\tBN broadcast ms\t")
	for _, res := range r.Results {
		for _, c := range res.Configs {
			rate := "-"
			if c.ImagesPerS > 0 {
				rate = fmt.Sprintf("%.1f", c.ImagesPerS)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t[%.1f, %.1f]\t%s\t%.1f\t%.0f%%\t%.1f\t%.2f\t\n", res.Workload, fmt.Sprintf(configLabels[c.Name], c.Processes, c.ThreadsPerProcess),
				1e3*c.StepSeconds, 1e3*c.StepSpread.Min, 1e3*c.StepSpread.Max, rate, 1e3*c.AllreduceSeconds, 100*c.AllreduceShare, 1e3*c.OverlapSeconds, 1e3*c.BroadcastSeconds)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, res := range r.Results {
		var parts []string
		if res.PairedRatio > 0 {
			parts = append(parts, "robarch over PyTorch DDP "+ratioText(res.PairedRatio, res.RatioInterval))
		}
		if res.ScalingEfficiency > 0 {
			parts = append(parts, fmt.Sprintf("scaling efficiency (%d×%d over 1×%d): robarch %s", r.Nproc, r.ThreadsPerProcess, r.Nproc*r.ThreadsPerProcess,
				ratioText(res.ScalingEfficiency, res.ScalingInterval)))
		}
		if res.PeerScalingEfficiency > 0 {
			parts = append(parts, "PyTorch "+ratioText(res.PeerScalingEfficiency, res.PeerScalingInterval))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "%s, paired step by step: %s\n", res.Workload, strings.Join(parts, "; "))
		}
	}
	return nil
}
