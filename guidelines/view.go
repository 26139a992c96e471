package guidelines

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/base64"
	"fmt"
	htmltemplate "html/template"
	"io"
	"slices"
	"strings"
	texttemplate "text/template"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/guidelines/paper"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
)

//go:embed templates/*.tmpl
var templates embed.FS

// view is what the templates see.
type view struct {
	*Analysis
	Title   string
	Figures []figureView
	// Others are the metrics besides clean and robust (PGD when the
	// robust metric is AutoAttack).
	Others []string
	// EffectRows are the effects the table shows (all, or the best and
	// worst maxRows/2); EffectsGap, when set, is the line standing for
	// the others, before row EffectsGapAt. EffectColumns counts the
	// table's columns.
	EffectRows    []Effect
	EffectsGap    string
	EffectsGapAt  int
	EffectColumns int
	// SpreadEffects are the effects whose spread check is listed (all,
	// or at scale the flagged ones); SpreadOmitted says what is left out.
	SpreadEffects []Effect
	SpreadOmitted string
	// GroupRows, GroupsGap and GroupsGapAt are the variants table's,
	// as for the effects.
	GroupRows   []*Group
	GroupsGap   string
	GroupsGapAt int
	// ReplRows, ReplGap and ReplGapAt are the replication table's.
	ReplRows  []ReplicatedLevel
	ReplGap   string
	ReplGapAt int
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
	v.EffectColumns = 7 + len(v.Others)
	if a.Model != nil {
		v.EffectColumns = 10 + len(v.Others)
	}
	v.EffectRows, v.EffectsGapAt = ends(a.Effects, maxRows)
	if hidden := a.Effects[v.EffectsGapAt : len(a.Effects)-(len(v.EffectRows)-v.EffectsGapAt)]; len(hidden) > 0 {
		v.EffectsGap = fmt.Sprintf("… %d more levels (ranks %d–%d): %s; every level in %s",
			len(hidden), hidden[0].Rank, hidden[len(hidden)-1].Rank, tally(hidden), EffectsCSVFile)
	} else {
		v.EffectsGapAt = -1
	}
	v.SpreadEffects = a.Effects
	if len(a.Effects) > maxRows {
		v.SpreadEffects = nil
		checked := 0
		for _, e := range a.Effects {
			if e.Spread != nil {
				checked++
				if e.Spread.P < SpreadAlpha {
					v.SpreadEffects = append(v.SpreadEffects, e)
				}
			}
		}
		v.SpreadOmitted = fmt.Sprintf(" %d levels checked, the %d flagged listed (every level's in %s)", checked, len(v.SpreadEffects), JSONFile)
	}
	// The variants table at scale: the baseline, then the best and worst
	// by mean robust accuracy.
	groups := a.Groups
	if len(groups) > maxRows {
		groups = slices.Clone(groups)
		slices.SortStableFunc(groups, func(x, y *Group) int {
			return cmp.Or(cmp.Compare(boolRank(x != a.Baseline), boolRank(y != a.Baseline)),
				cmp.Compare(y.Mean[a.RobustMetric], x.Mean[a.RobustMetric]))
		})
	}
	v.GroupRows, v.GroupsGapAt = ends(groups, maxRows)
	if n := len(groups) - len(v.GroupRows); n > 0 {
		v.GroupsGap = fmt.Sprintf("… %d more variants between these (by mean %s); every variant's means are in %s, every trial in robarch results export --format csv",
			n, MetricName(a.RobustMetric), JSONFile)
	} else {
		v.GroupsGapAt = -1
	}
	v.ReplGapAt = -1
	if r := a.Replication; r != nil {
		v.ReplRows, v.ReplGapAt = ends(r.Levels, maxRows)
		if hidden := r.Levels[v.ReplGapAt : len(r.Levels)-(len(v.ReplRows)-v.ReplGapAt)]; len(hidden) > 0 {
			v.ReplGap = replicationGap(hidden)
		} else {
			v.ReplGapAt = -1
		}
	}
	return v
}

// replicationGap stands for the replication rows left out: their tally,
// and by name those that contradict (helps in one half, hurts in the
// other), which a reader must not miss.
func replicationGap(hidden []ReplicatedLevel) string {
	n := map[string]int{}
	var contradict []string
	for _, l := range hidden {
		n[l.Agreement]++
		if l.Agreement == Contradict {
			contradict = append(contradict, l.Label)
		}
	}
	var parts []string
	for _, g := range []string{Agree, Consistent, SignDiffers, Contradict, Missing} {
		if n[g] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[g], g))
		}
	}
	out := fmt.Sprintf("… %d more levels: %s", len(hidden), strings.Join(parts, ", "))
	if len(contradict) > 0 {
		out += " (contradicting: " + strings.Join(clip(contradict), ", ") + ")"
	}
	return out + "; every level in " + JSONFile
}

// tally counts effects by verdict, in the verdicts' usual order.
func tally(effects []Effect) string {
	n := map[string]int{}
	for _, e := range effects {
		n[e.Verdict]++
	}
	var parts []string
	for _, v := range []string{Helps, NoClearEffect, Hurts, Inconclusive} {
		if n[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[v], v))
		}
	}
	return strings.Join(parts, ", ")
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
	"pts": func(f float64) string { return fmt.Sprintf("%.2f", Points(f)) },
	// sdpts is a pooled SD in points; a fit without degrees of freedom
	// (one seed per variant so far) has none.
	"sdpts": func(sd map[string]float64, metric string) string {
		if v, ok := sd[metric]; ok {
			return fmt.Sprintf("%.2f pts", Points(v))
		}
		return "not estimable yet"
	},
	"lookSD": func(l LookInfo) string {
		if l.DF == 0 {
			return "not estimable yet"
		}
		return fmt.Sprintf("%.2f pts", Points(l.SD))
	},
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
	"add":      func(i, j int) int { return i + j },
	"fit": func(f *study.LineFit, unit string) string {
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
	"paper":  func() string { return paper.Source },
	"join":   strings.Join,
	"clip":   clip,
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
