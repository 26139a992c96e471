package store

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/robarch/robarch/results"
)

// Export formats.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// csvFixed are the leading CSV columns; metric columns other than the three
// well-known accuracies follow, sorted by name.
var csvFixed = []string{
	"sweep", "variant", "factor", "level", "seed", "params", "macs", "width_depth_ratio", "status",
	results.CleanAcc, results.PGDAcc, results.AAAcc, "seconds",
}

// Export writes trials as "csv" (one row per trial, one column per metric,
// empty where a trial lacks it) or "json" (an array of full trial records).
func Export(w io.Writer, format string, trials []results.Trial) error {
	switch format {
	case FormatCSV:
		return exportCSV(w, trials)
	case FormatJSON:
		return exportJSON(w, trials)
	}
	return fmt.Errorf("export: format %q; allowed: csv, json", format)
}

// Decode reads what Export wrote. CSV holds only the columns above, so the
// trials it returns lack spec, config, env, error and timestamps.
func Decode(r io.Reader, format string) ([]results.Trial, error) {
	switch format {
	case FormatCSV:
		return decodeCSV(r)
	case FormatJSON:
		return decodeJSON(r)
	}
	return nil, fmt.Errorf("decode: format %q; allowed: csv, json", format)
}

// trialJSON shadows Metrics so that NaN and ±Inf survive encoding.
type trialJSON struct {
	results.Trial
	Metrics map[string]metricValue `json:"metrics,omitempty"`
}

func exportJSON(w io.Writer, trials []results.Trial) error {
	out := make([]trialJSON, len(trials))
	for i, t := range trials {
		out[i] = trialJSON{Trial: t, Metrics: toMetricValues(t.Metrics)}
		out[i].Trial.Metrics = nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("export json: %w", err)
	}
	return nil
}

func decodeJSON(r io.Reader) ([]results.Trial, error) {
	var in []trialJSON
	if err := json.NewDecoder(r).Decode(&in); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	out := make([]results.Trial, len(in))
	for i, t := range in {
		out[i] = t.Trial
		out[i].Metrics = fromMetricValues(t.Metrics)
	}
	return out, nil
}

func extraMetrics(trials []results.Trial) []string {
	fixed := map[string]bool{}
	for _, c := range csvFixed {
		fixed[c] = true
	}
	seen := map[string]bool{}
	var extra []string
	for _, t := range trials {
		for k := range t.Metrics {
			if !fixed[k] && !seen[k] {
				seen[k] = true
				extra = append(extra, k)
			}
		}
	}
	slices.Sort(extra)
	return extra
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func exportCSV(w io.Writer, trials []results.Trial) error {
	extra := extraMetrics(trials)
	cw := csv.NewWriter(w)
	if err := cw.Write(append(slices.Clone(csvFixed), extra...)); err != nil {
		return fmt.Errorf("export csv: %w", err)
	}
	metric := func(t results.Trial, k string) string {
		if v, ok := t.Metrics[k]; ok {
			return formatFloat(v)
		}
		return ""
	}
	for _, t := range trials {
		row := []string{
			t.Sweep, t.Variant, t.Factor, t.Level, strconv.FormatInt(t.Seed, 10),
			strconv.FormatInt(t.Params, 10), strconv.FormatInt(t.MACs, 10), formatFloat(t.WidthDepthRatio),
			string(t.Status), metric(t, results.CleanAcc), metric(t, results.PGDAcc), metric(t, results.AAAcc),
			formatFloat(t.Seconds),
		}
		for _, k := range extra {
			row = append(row, metric(t, k))
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("export csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("export csv: %w", err)
	}
	return nil
}

func decodeCSV(r io.Reader) ([]results.Trial, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("decode csv: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("decode csv: no header")
	}
	header := rows[0]
	if len(header) < len(csvFixed) || !slices.Equal(header[:len(csvFixed)], csvFixed) {
		return nil, fmt.Errorf("decode csv: header %v must start with %v", header, csvFixed)
	}
	isMetric := func(name string) bool {
		return !slices.Contains(csvFixed, name) || name == results.CleanAcc || name == results.PGDAcc || name == results.AAAcc
	}
	out := make([]results.Trial, 0, len(rows)-1)
	for i, row := range rows[1:] {
		line := i + 2
		var t results.Trial
		for col, name := range header {
			cell := row[col]
			var err error
			switch name {
			case "sweep":
				t.Sweep = cell
			case "variant":
				t.Variant = cell
			case "factor":
				t.Factor = cell
			case "level":
				t.Level = cell
			case "status":
				t.Status = results.Status(cell)
			case "seed":
				t.Seed, err = strconv.ParseInt(cell, 10, 64)
			case "params":
				t.Params, err = strconv.ParseInt(cell, 10, 64)
			case "macs":
				t.MACs, err = strconv.ParseInt(cell, 10, 64)
			case "width_depth_ratio":
				t.WidthDepthRatio, err = strconv.ParseFloat(cell, 64)
			case "seconds":
				t.Seconds, err = strconv.ParseFloat(cell, 64)
			}
			if isMetric(name) && cell != "" {
				var v float64
				if v, err = strconv.ParseFloat(cell, 64); err == nil {
					if t.Metrics == nil {
						t.Metrics = map[string]float64{}
					}
					t.Metrics[name] = v
				}
			}
			if err != nil {
				return nil, fmt.Errorf("decode csv line %d: column %s: %w", line, name, err)
			}
		}
		out = append(out, t)
	}
	return out, nil
}
