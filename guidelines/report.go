package guidelines

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/internal/atomicfile"
	"github.com/robarch/robarch/results"
)

//go:embed templates/*.tmpl
var templates embed.FS

// Files the report writes under its directory.
const (
	HTMLFile        = "index.html"
	MarkdownFile    = "REPORT.md"
	JSONFile        = "guidelines.json"
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
// plots embedded), REPORT.md, guidelines.json, recommended.yaml (when there
// is a recommendation) and plots/*.png and *.svg. Every file is written
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

// view is what the templates see.
type view struct {
	*Analysis
	Title   string
	Figures []figureView
	// Others are the metrics besides clean and robust (PGD when the
	// robust metric is AutoAttack).
	Others []string
}

type figureView struct {
	Figure
	PNGFile string
	SVGFile string
	DataURI htmltemplate.URL
}

func newView(a *Analysis, figs []Figure) view {
	v := view{Analysis: a, Title: "robarch guidelines report: " + a.Sweep}
	for _, f := range figs {
		v.Figures = append(v.Figures, figureView{Figure: f,
			PNGFile: PlotsDir + "/" + f.Name + ".png", SVGFile: PlotsDir + "/" + f.Name + ".svg",
			// The PNG is our own rendering, so marking it safe is sound.
			DataURI: htmltemplate.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(f.PNG))})
	}
	for _, m := range a.Metrics {
		if m != results.CleanAcc && m != a.RobustMetric {
			v.Others = append(v.Others, m)
		}
	}
	return v
}

// Figure returns the named figure's view (for templates).
func (v view) Figure(name string) *figureView {
	for i := range v.Figures {
		if v.Figures[i].Name == name {
			return &v.Figures[i]
		}
	}
	return nil
}

// EDFFigures are the figures of the EDFs.
func (v view) EDFFigures() []figureView {
	var out []figureView
	for _, f := range v.Figures {
		if strings.HasPrefix(f.Name, "edf-") {
			out = append(out, f)
		}
	}
	return out
}

var funcs = map[string]any{
	"pct":    func(f float64) string { return fmt.Sprintf("%.2f%%", Points(f)) },
	"metric": MetricName,
	"short":  shortMetric,
	"budget": arch.FormatBudget,
	"est": func(e Effect, m string) string {
		est, ok := e.Estimate(m)
		if !ok {
			return "—"
		}
		return formatEffect(est)
	},
	// estCell and adjustedCell are est and adjusted for an HTML table
	// cell: the interval on its own line, so the table fits a laptop
	// window. They hold only formatted numbers.
	"estCell": func(e Effect, m string) htmltemplate.HTML {
		est, ok := e.Estimate(m)
		if !ok {
			return "—"
		}
		if est.CI == nil {
			return htmltemplate.HTML(fmt.Sprintf("%+.2f pts<br><span class=\"small\">no interval</span>", Points(est.Effect)))
		}
		return htmltemplate.HTML(fmt.Sprintf("%+.2f pts<br><span class=\"small\">%s</span>", Points(est.Effect), formatInterval(est.CI)))
	},
	"adjustedCell": func(e Effect, m string) htmltemplate.HTML {
		est, _ := e.Estimate(m)
		if est.AdjustedCI == nil {
			return "—"
		}
		return htmltemplate.HTML(fmt.Sprintf("%s<br><span class=\"small\">α = %.4f</span>", formatInterval(est.AdjustedCI), est.TestLevel))
	},
	"counts": func(e Effect, m string) string {
		est, _ := e.Estimate(m)
		if est.Paired > 0 {
			return fmt.Sprintf("%d vs %d (%d paired)", est.N, est.NBaseline, est.Paired)
		}
		return fmt.Sprintf("%d vs %d", est.N, est.NBaseline)
	},
	"adjusted": func(e Effect, m string) string {
		est, _ := e.Estimate(m)
		if est.AdjustedCI == nil {
			return "—"
		}
		return fmt.Sprintf("%s at α = %.4f", formatInterval(est.AdjustedCI), est.TestLevel)
	},
	"mde": func(e Effect, m string) string {
		est, _ := e.Estimate(m)
		if est.MDE <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", Points(est.MDE))
	},
	"check": func(e Effect) string {
		c := e.Check
		if c == nil {
			return "—"
		}
		out := fmt.Sprintf("PGD %+.2f, AA %+.2f (%d seed × %d)", Points(c.PGDGain), Points(c.AAGain), c.Seeds, c.N)
		if c.Flagged {
			out += " MASKING?"
		}
		return out
	},
	"pts":   func(f float64) string { return fmt.Sprintf("%.2f", Points(f)) },
	"alpha": func(f float64) string { return fmt.Sprintf("%.4f", f) },
	"seedlist": func(s []int64) string {
		parts := make([]string, len(s))
		for i, v := range s {
			parts[i] = fmt.Sprint(v)
		}
		return strings.Join(parts, ", ")
	},
	"interval": formatInterval,
	"add1":     func(i int) int { return i + 1 },
	"fit": func(f *Fit, unit string) string {
		if f == nil {
			return "too few distinct variants to fit a line"
		}
		return fmt.Sprintf("slope %+.2f pts per %s, r = %.2f over %d variants", Points(f.Slope), unit, f.R, f.N)
	},
	"caveat": func(spread float64) string {
		if spread >= 0.1 {
			return ""
		}
		return fmt.Sprintf(" (the variants differ by only %.1f%% here, so this fit says little)", 100*spread)
	},
	"f2":     func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"mul100": Points,
	"macsM":  func(n int64) float64 { return float64(n) / 1e6 },
	"paper":  func() string { return PaperSource },
	"join":   strings.Join,
	"md":     func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") },
	"mean": func(g *Group, m string) string {
		if _, ok := g.Mean[m]; !ok {
			return "—"
		}
		return fmt.Sprintf("%.2f%%", Points(g.Mean[m]))
	},
	"label": variantLabel,
	"class": func(s string) string { return strings.ReplaceAll(s, " ", "-") },
	"indent": func(s string) string {
		return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
	},
}

// executor is what text/template and html/template templates share.
type executor interface {
	Execute(w io.Writer, data any) error
}

func renderText(name string, v view) ([]byte, error) {
	return renderTemplate(name, v, func() (executor, error) {
		return texttemplate.New(name).Funcs(funcs).ParseFS(templates, "templates/"+name)
	})
}

func renderHTML(name string, v view) ([]byte, error) {
	return renderTemplate(name, v, func() (executor, error) {
		return htmltemplate.New(name).Funcs(funcs).ParseFS(templates, "templates/"+name)
	})
}

func renderTemplate(name string, v view, parse func() (executor, error)) ([]byte, error) {
	t, err := parse()
	if err != nil {
		return nil, fmt.Errorf("report: template %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("report: render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}
