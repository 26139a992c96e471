package guidelines

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"image"
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
)

// writeSynthReport writes the report of a synthetic sweep into a temp
// directory (or $GUIDELINES_REPORT_DIR, to look at it).
func writeSynthReport(t *testing.T, trials []results.Trial) (string, *Analysis) {
	t.Helper()
	dir := t.TempDir()
	if d := os.Getenv("GUIDELINES_REPORT_DIR"); d != "" {
		dir = filepath.Join(d, t.Name())
	}
	a, err := Report(context.Background(), trials, dir, Options{}, RecommendOptions{})
	require.NoError(t, err)
	return dir, a
}

// The numbers in guidelines.json equal those recomputed here straight
// from the trials by the textbook two-way ANOVA of a complete balanced
// design (residual = y − variant mean − seed mean + grand mean), and the
// Markdown and HTML show them.
func TestReportNumbersMatchTrials(t *testing.T) {
	trials := synthSweep(t, 4, true, silu, kernel5, se25)
	dir, _ := writeSynthReport(t, trials)

	data, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	var got struct {
		RobustMetric string   `json:"robust_metric"`
		Metrics      []string `json:"metrics"`
		Confidence   float64  `json:"confidence"`
		Counts       Counts   `json:"counts"`
		Effects      []Effect `json:"effects"`
		Plots        []string `json:"plots"`
		Model        Model    `json:"model"`
	}
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, results.AAAcc, got.RobustMetric)
	assert.Equal(t, 16, got.Counts.Done)
	require.Len(t, got.Effects, 3)

	variants := []string{"baseline", "activation=silu", "kernel=5", "se_ratio=0.25"}
	const seeds = 4
	anova := func(metric string) (effects map[string]float64, sd float64) {
		y := map[string][]float64{}
		for _, tr := range trials {
			y[tr.Variant] = append(y[tr.Variant], 0)
		}
		for _, tr := range trials {
			y[tr.Variant][tr.Seed] = tr.Metrics[metric]
		}
		row, col, grand := map[string]float64{}, make([]float64, seeds), 0.0
		for _, v := range variants {
			for s, x := range y[v] {
				row[v] += x / seeds
				col[s] += x / float64(len(variants))
				grand += x / float64(seeds*len(variants))
			}
		}
		var rss float64
		for _, v := range variants {
			for s, x := range y[v] {
				r := x - row[v] - col[s] + grand
				rss += r * r
			}
		}
		effects = map[string]float64{}
		for _, v := range variants[1:] {
			effects[v] = row[v] - row["baseline"]
		}
		return effects, math.Sqrt(rss / float64((len(variants)-1)*(seeds-1)))
	}
	df := float64((len(variants) - 1) * (seeds - 1))
	tq := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(1 - (1-got.Confidence)/2)

	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	require.NoError(t, err)
	ownSeen := 0
	for _, m := range got.Metrics {
		effects, sd := anova(m)
		assert.InDelta(t, sd, got.Model.SD[m], 1e-12, "%s pooled SD", m)
		assert.Equal(t, int(df), got.Model.DF[m])
		for _, e := range got.Effects {
			est, ok := e.Estimate(m)
			require.True(t, ok, "%s has no %s", e.Label(), m)
			assert.InDelta(t, effects[e.Variant], est.Effect, 1e-12, "%s %s effect", e.Label(), m)
			se, q := sd*math.Sqrt(2.0/seeds), tq
			if est.Own {
				// A level flagged by the spread check may be analysed on
				// its own paired differences: a paired t, seeds−1 df.
				var d []float64
				for _, tr := range trials {
					if tr.Variant == e.Variant {
						for _, b := range trials {
							if b.Variant == "baseline" && b.Seed == tr.Seed {
								d = append(d, tr.Metrics[m]-b.Metrics[m])
							}
						}
					}
				}
				se = stat.StdDev(d, nil) / math.Sqrt(float64(len(d)))
				q = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(d) - 1)}.Quantile(1 - (1-got.Confidence)/2)
				ownSeen++
			}
			assert.InDelta(t, se, est.SE, 1e-12, "%s %s SE", e.Label(), m)
			require.NotNil(t, est.CI)
			assert.InDelta(t, effects[e.Variant]-q*se, est.CI.Low, 1e-12)
			assert.InDelta(t, effects[e.Variant]+q*se, est.CI.High, 1e-12)
			assert.Equal(t, seeds, est.N)
			assert.Equal(t, seeds, est.NBaseline)
		}
	}
	t.Logf("%d estimate(s) from a level's own paired analysis", ownSeen)
	for _, e := range got.Effects {
		r, _ := e.Estimate(got.RobustMetric)
		for _, shown := range []string{formatEffect(r), formatInterval(r.AdjustedCI), fmt.Sprintf("%.2f", Points(r.MDE))} {
			assert.True(t, strings.Contains(string(md), shown), "REPORT.md shows %s's %q", e.Label(), shown)
			assert.True(t, strings.Contains(html.UnescapeString(string(page)), shown), "index.html shows %s's %q", e.Label(), shown)
		}
	}
	assert.Contains(t, string(md), "Holm")
	assert.Contains(t, string(md), "Precision: training fp32, evaluation fp32.")
	assert.Contains(t, string(md), fmt.Sprintf("%d degrees of freedom", int(df)))

	// Every plot listed exists; PNGs decode with a sensible size, SVGs are SVG.
	require.NotEmpty(t, got.Plots)
	for _, p := range got.Plots {
		data, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err, p)
		switch filepath.Ext(p) {
		case ".png":
			img, format, err := image.Decode(bytes.NewReader(data))
			require.NoError(t, err, p)
			assert.Equal(t, "png", format)
			assert.Greater(t, img.Bounds().Dx(), 300, p)
			assert.Greater(t, img.Bounds().Dy(), 200, p)
			assert.True(t, strings.Contains(string(page), "fig-"+strings.TrimSuffix(filepath.Base(p), ".png")), "%s is in the page", p)
		case ".svg":
			assert.Contains(t, string(data), "<svg", p)
		}
	}
	for _, name := range []string{"effects-robust", "effects-clean", "accuracy-vs-params", "accuracy-vs-macs", "robust-vs-ratio", "clean-vs-robust", "edf-activation", "edf-kernel"} {
		assert.Contains(t, got.Plots, "plots/"+name+".png")
	}

	// Self-contained: plots are embedded, nothing is fetched from elsewhere.
	assert.True(t, strings.Contains(string(page), `src="data:image/png;base64,`), "plots are embedded")
	for _, bad := range []string{"http://", "https://", "<script", "<link"} {
		assert.False(t, strings.Contains(string(page), bad), "the page has %q", bad)
	}
}

func TestReportPartialSweepSaysSo(t *testing.T) {
	trials := synthSweep(t, 3, false, silu, kernel5)
	trials = withStatus(trials, "kernel=5", 2, results.StatusPending)
	trials = withStatus(trials, "activation=silu", 2, results.StatusRunning)
	dir, a := writeSynthReport(t, trials)
	assert.Equal(t, 2, a.Counts.Missing)
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "partial sweep: 2 trial(s) missing")
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(page), "<strong>2 trial(s) missing</strong>"), "the page says the sweep is partial")
}

func TestReportRecommendationFile(t *testing.T) {
	trials := synthSweep(t, 3, false, silu, kernel5, se25)
	dir, a := writeSynthReport(t, trials)
	require.NotNil(t, a.Recommendation)
	spec, err := arch.Load(filepath.Join(dir, RecommendedFile))
	require.NoError(t, err, "recommended.yaml is a valid spec")
	assert.Equal(t, []string{"silu", "silu", "silu"}, spec.Block.Activations)
	assert.Equal(t, 3, spec.Stages[0].Kernel, "kernel=5 hurt, so it is not applied")
}

func TestReportRandomDesign(t *testing.T) {
	trials := synthRandomSweep(t, 24, randKernel, randAct)
	dir, a := writeSynthReport(t, trials)
	assert.Equal(t, RandomFactor, a.Design)
	data, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	var got struct {
		Design     string            `json:"design"`
		References map[string]string `json:"references"`
		Effects    []Effect          `json:"effects"`
	}
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, RandomFactor, got.Design)
	assert.Equal(t, map[string]string{sweep.FactorKernel: "3", sweep.FactorActivation: "relu"}, got.References)
	require.Len(t, got.Effects, 3)
	for i, e := range got.Effects {
		assert.Equal(t, a.Effects[i].Estimates, e.Estimates, "JSON round trip of %s", e.Label())
	}
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(md), "| activation | gelu, silu (vs relu) |"), "the per-factor table names the reference")
	for _, name := range []string{"edf-kernel.png", "edf-activation.png", "effects-robust.png"} {
		_, err := os.Stat(filepath.Join(dir, PlotsDir, name))
		assert.NoError(t, err)
	}
}

// Early in a sweep only the baseline may be done: the report still
// renders, with nothing to rank and every level missing.
func TestReportOnlyBaselineDone(t *testing.T) {
	trials := synthSweep(t, 2, false, silu, kernel5)
	for _, v := range []string{"activation=silu", "kernel=5"} {
		for s := range int64(2) {
			trials = withStatus(trials, v, s, results.StatusPending)
		}
	}
	dir, a := writeSynthReport(t, trials)
	assert.Empty(t, a.Effects)
	assert.Equal(t, 4, a.Counts.Missing)
	require.NotNil(t, a.Recommendation)
	assert.Empty(t, a.Recommendation.Applied)
	for _, f := range a.Findings {
		if f.ID != "width-depth-ratio" {
			assert.Equal(t, NotTested, f.Outcome, f.ID)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, PlotsDir, "effects-robust.png"))
	require.NoError(t, err)
	_, _, err = image.Decode(bytes.NewReader(data))
	require.NoError(t, err)
}

// withPolicy writes a seed policy (and evaluation sizes) into every
// trial's stored config, as the sweep planner does.
func withPolicy(t *testing.T, trials []results.Trial, seeds string) []results.Trial {
	t.Helper()
	for i := range trials {
		trials[i].Config = []byte(`{"sweep":{"name":"synth","quantum":2,"tolerance":0.02,"seeds":` + seeds +
			`,"dataset":{"test_size":0},"eval":{"size":1000}},"variant":"` + trials[i].Variant + `"}`)
	}
	return trials
}

// An adaptive sweep whose second round has not run: the report says
// which round is pending and for which levels, and the open level's
// verdict is marked as not final.
func TestReportAdaptiveSweepSaysWhatIsPending(t *testing.T) {
	small := level{factor: sweep.FactorSERatio, level: "0.25", robust: 0.003,
		edit: func(s *arch.Spec) { s.Block.SERatio = 0.25 }}
	trials := withPolicy(t, synthSweep(t, 3, false, silu, kernel5, small), `{"start":3,"add":2,"max":5}`)
	dir, a := writeSynthReport(t, trials)
	require.NotNil(t, a.Model)
	require.NotNil(t, a.Model.Pending, "the small effect is still open")
	assert.Equal(t, 2, a.Model.Pending.Look)
	assert.Equal(t, []int64{3, 4}, a.Model.Pending.Seeds)
	assert.Contains(t, a.Model.Pending.Variants, "se_ratio=0.25")
	assert.NotContains(t, a.Model.Pending.Variants, "activation=silu", "a clear level gets no more seeds")
	assert.Equal(t, Helps, effectOf(t, a, "activation=silu").Verdict)
	assert.True(t, effectOf(t, a, "se_ratio=0.25").Open)
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "**Pending:** round 2 of the seed policy — seeds 3, 4 for baseline")
	assert.Contains(t, string(md), "open: round 2 (more seeds) is pending")
	assert.Contains(t, string(md), "each seed is evaluated on its own 1000-example subset")
}

// --split-seeds analyses alternating halves of the seeds and tallies
// their agreement.
func TestReportSplitSeeds(t *testing.T) {
	trials := synthSweep(t, 6, false, silu, kernel5, se25)
	a, err := Analyze(trials, Options{SplitSeeds: true})
	require.NoError(t, err)
	r := a.Replication
	require.NotNil(t, r)
	assert.Equal(t, []int64{0, 2, 4}, r.SeedsA)
	assert.Equal(t, []int64{1, 3, 5}, r.SeedsB)
	require.Len(t, r.Levels, 3)
	assert.Zero(t, r.Contradict)
	for _, l := range r.Levels {
		require.NotNil(t, l.A)
		require.NotNil(t, l.B)
		assert.Equal(t, 3, l.A.N)
	}
	few, err := Analyze(synthSweep(t, 3, false, silu), Options{SplitSeeds: true})
	require.NoError(t, err, "too few seeds to split is a note, not a failure")
	assert.Nil(t, few.Replication)
	assert.Contains(t, few.Notes, "no split of the seeds: 3 finished seeds; each half needs at least two")
}

func TestAgreement(t *testing.T) {
	v := func(verdict string, effect float64) *HalfValue { return &HalfValue{Verdict: verdict, Effect: effect} }
	tests := []struct {
		a, b *HalfValue
		want string
	}{
		{v(Helps, 0.02), v(Helps, 0.01), Agree},
		{v(Helps, 0.02), v(Hurts, -0.01), Contradict},
		{v(Helps, 0.02), v(NoClearEffect, 0.01), Consistent},
		{v(Hurts, -0.02), v(NoClearEffect, 0.01), SignDiffers},
		{v(NoClearEffect, -0.002), v(NoClearEffect, 0.001), Agree},
		{v(Inconclusive, 0.002), v(NoClearEffect, 0.001), SignDiffers},
		{v(Helps, 0.02), nil, Missing},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, agreement(tt.a, tt.b), "%+v vs %+v", tt.a, tt.b)
	}
}

// A sweep read mid-run, one seed per variant so far: the pooled SD has no
// degrees of freedom. The report still writes (JSON has no NaN: null) and
// says the SD is not known yet.
func TestReportWithNoDegreesOfFreedom(t *testing.T) {
	trials := synthSweep(t, 1, false, silu, kernel5)
	dir, a := writeSynthReport(t, trials)
	require.NotNil(t, a)
	js, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	assert.NotContains(t, string(js), "NaN")
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	require.NoError(t, err)
	assert.NotContains(t, string(page), "NaN")
}
