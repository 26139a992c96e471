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
			peerFold := "batch norms as layers"
			if r.PeerFoldBN {
				peerFold = "batch norms folded in pgd10/apgd-ce/infer"
			}
			fmt.Fprintf(w, "; PyTorch: %s weights, %s forward, %s, %s", r.PeerMemoryFormat, orFP32(r.PeerPrecision), peerFold, peerMallocText(r.PeerMalloc))
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "images/s", "[min, max]", "GFLOP/s", "of ceiling", "peak RSS", "RSS growth", "(steps)"}
	if peer {
		head = append(head, "PyTorch img/s", "[min, max]", "PyTorch of ceiling", "ratio", "paired [95%]")
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
					fmt.Sprintf("%.2fx", res.Ratio),
					ratioText(res.PairedRatio, res.RatioInterval))
			} else {
				row = append(row, "-", "-", "-", "-", "-")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, res := range r.Results {
		if res.Profile != nil {
			if err := writeProfile(w, res); err != nil {
				return err
			}
		}
	}
	return nil
}

// ratioText is a median step-by-step ratio and its interval, or the
// median alone when there were too few steps for one.
func ratioText(m float64, iv *Interval) string {
	if iv == nil {
		return fmt.Sprintf("%.2fx", m)
	}
	return fmt.Sprintf("%.2fx [%.2f, %.2f]", m, iv.Lo, iv.Hi)
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

// WriteFolderJSON writes one JSON object per epoch (JSON Lines), then one
// per transform's summary with "summary": true.
func WriteFolderJSON(w io.Writer, r *FolderReport) error {
	enc := json.NewEncoder(w)
	for _, e := range r.Epochs {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("write bench JSON: %w", err)
		}
	}
	for _, s := range r.Summary() {
		line := struct {
			Summary bool `json:"summary"`
			FolderSummary
			PeakRSSBytes int64      `json:"peak_rss_bytes"`
			PeerMalloc   PeerMalloc `json:"peer_malloc,omitempty"`
		}{true, s, r.PeakRSSBytes, r.PeerMalloc}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("write bench JSON: %w", err)
		}
	}
	return nil
}

// WriteFolderTable writes the image-folder loader benchmark for the
// terminal: one row per epoch, then the medians.
func WriteFolderTable(w io.Writer, r *FolderReport) error {
	fmt.Fprintf(w, "loader on %s: %d×%d, batch %d, %d workers, prefetch %d batches, %d libtorch threads, JPEG decoder %s",
		r.Dir, r.Size, r.Size, r.Batch, r.Workers, r.Prefetch, r.Threads, r.Decoder)
	if r.Torch != "" {
		fmt.Fprintf(w, "; peer: torchvision ImageFolder + DataLoader (PyTorch %s, %s)", r.Torch, peerMallocText(r.PeerMalloc))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transform\tepoch\timages\timages/s\tRSS MiB\tpeer img/s\tpeer RSS MiB (main+workers)\tratio\t")
	for _, e := range r.Epochs {
		peer, peerRSS, ratio := "-", "-", "-"
		if e.PeerImagesPerS > 0 {
			peer = fmt.Sprintf("%.0f", e.PeerImagesPerS)
			peerRSS = fmt.Sprintf("%d+%d", e.PeerRSSBytes>>20, e.PeerWorkersRSSBytes>>20)
			ratio = fmt.Sprintf("%.2f", e.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%d\t%s\t%s\t%s\t\n", e.Transform, e.Epoch, e.Images, e.ImagesPerS, e.RSSBytes>>20, peer, peerRSS, ratio)
	}
	for _, s := range r.Summary() {
		peer, ratio := "-", "-"
		if s.PeerImagesPerS > 0 {
			peer, ratio = fmt.Sprintf("%.0f", s.PeerImagesPerS), fmt.Sprintf("%.2f", s.Ratio)
		}
		fmt.Fprintf(tw, "%s\tmedian*\t\t%.0f\t\t%s\t\t%s\t\n", s.Transform, s.ImagesPerS, peer, ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "* over the epochs after the first; robarch peak RSS %d MiB\n", r.PeakRSSBytes>>20)
	return err
}

// peerMallocText says which allocator settings the peer ran with.
func peerMallocText(m PeerMalloc) string {
	if m == PeerMallocDefault {
		return "glibc's malloc defaults"
	}
	return "robarch's malloc settings"
}
