package guidelines

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/robarch/robarch/internal/atomicfile"
	"github.com/robarch/robarch/results"
)

// Files the report writes under its directory.
const (
	HTMLFile        = "index.html"
	MarkdownFile    = "REPORT.md"
	JSONFile        = "guidelines.json"
	EffectsCSVFile  = "effects.csv"
	RecommendedFile = "recommended.yaml"
	PlotsDir        = "plots"
)

// Report analyses the trials, recommends an architecture and writes the
// report into outDir (created if needed). A recommendation that cannot
// be made (e.g. trials without specs) is noted in the report rather than
// failing it.
func Report(ctx context.Context, trials []results.Trial, outDir string, opts Options, ropts RecommendOptions) (*Analysis, error) {
	a, err := Analyze(trials, opts)
	if err != nil {
		return nil, err
	}
	rec, err := Recommend(a, nil, ropts)
	if err != nil {
		a.Notes = append(a.Notes, "no recommended architecture: "+err.Error())
		slog.Warn("guidelines: no recommendation", "err", err)
	} else {
		a.Recommendation = rec
	}
	if err := WriteReport(ctx, outDir, a); err != nil {
		return nil, err
	}
	return a, nil
}

// WriteReport renders the analysis into dir: index.html (self-contained,
// plots embedded), REPORT.md, guidelines.json, effects.csv (every level's
// row, which the page shows only the ends of beyond maxRows levels),
// recommended.yaml (when there is a recommendation) and plots/*.png and
// *.svg. Every file is written
// atomically.
func WriteReport(ctx context.Context, dir string, a *Analysis) error {
	if err := os.MkdirAll(filepath.Join(dir, PlotsDir), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	figs, err := Figures(a)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	for _, f := range figs {
		if err := ctx.Err(); err != nil {
			return err
		}
		for ext, data := range map[string][]byte{".png": f.PNG, ".svg": f.SVG} {
			if err := atomicfile.WriteFile(filepath.Join(dir, PlotsDir, f.Name+ext), data, 0o644); err != nil {
				return err
			}
		}
	}
	js, err := json.MarshalIndent(jsonReport{Analysis: a, Plots: plotFiles(figs)}, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encode %s: %w", JSONFile, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, JSONFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	effects, err := effectsCSV(a)
	if err != nil {
		return fmt.Errorf("report: %s: %w", EffectsCSVFile, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, EffectsCSVFile), effects, 0o644); err != nil {
		return err
	}
	if a.Recommendation != nil {
		if err := atomicfile.WriteFile(filepath.Join(dir, RecommendedFile), []byte(a.Recommendation.YAML), 0o644); err != nil {
			return err
		}
	}
	v := newView(a, figs)
	md, err := renderText("report.md.tmpl", v)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, MarkdownFile), md, 0o644); err != nil {
		return err
	}
	page, err := renderHTML("index.html.tmpl", v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, HTMLFile), page, 0o644)
}

// effectsCSV is every level's row of the effects table, one column per
// number, in percentage points: the whole table when the page shows only
// its ends.
func effectsCSV(a *Analysis) ([]byte, error) {
	head := []string{"rank", "factor", "level", "variant", "verdict"}
	for _, m := range a.Metrics {
		head = append(head, m+"_effect", m+"_ci_low", m+"_ci_high")
	}
	head = append(head, "adjusted_low", "adjusted_high", "test_level", "p", "mde", "n", "n_baseline", "paired", "note", "trade_off")
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(head); err != nil {
		return nil, err
	}
	for _, e := range a.Effects {
		row := []string{strconv.Itoa(e.Rank), e.Factor, e.Level, e.Variant, e.Verdict}
		for _, m := range a.Metrics {
			est, ok := e.Estimate(m)
			switch {
			case !ok:
				row = append(row, "", "", "")
			case est.CI == nil:
				row = append(row, num(Points(est.Effect)), "", "")
			default:
				row = append(row, num(Points(est.Effect)), num(Points(est.CI.Low)), num(Points(est.CI.High)))
			}
		}
		r, _ := e.Estimate(a.RobustMetric)
		adjLo, adjHi, level, p, mde := "", "", "", "", ""
		if r.AdjustedCI != nil {
			adjLo, adjHi, level = num(Points(r.AdjustedCI.Low)), num(Points(r.AdjustedCI.High)), num(r.TestLevel)
		}
		if r.DF > 0 {
			p = num(r.P)
		}
		if r.MDE > 0 {
			mde = num(Points(r.MDE))
		}
		row = append(row, adjLo, adjHi, level, p, mde, strconv.Itoa(r.N), strconv.Itoa(r.NBaseline), strconv.Itoa(r.Paired), e.Note, e.TradeOff)
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// jsonReport is guidelines.json: the analysis plus the plot files.
type jsonReport struct {
	*Analysis
	Plots []string `json:"plots"`
}

func plotFiles(figs []Figure) []string {
	var out []string
	for _, f := range figs {
		out = append(out, PlotsDir+"/"+f.Name+".png", PlotsDir+"/"+f.Name+".svg")
	}
	return out
}
