package guidelines

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/store"
)

// scaleStudy is a synthetic finished sweep for the report-at-scale
// benchmark: variants × seeds trials, baseline included.
type scaleStudy struct {
	design          string // "ofat" or RandomFactor
	variants, seeds int
}

func (s scaleStudy) name() string { return fmt.Sprintf("%s-%d", s.design, s.variants*s.seeds) }

// scaleStudies are the sizes of docs/reliability.md's "Report at scale":
// one-factor sweeps with many levels and seeds, random designs with
// hundreds to thousands of samples at two seeds each.
var scaleStudies = []scaleStudy{
	{"ofat", 20, 5}, {"ofat", 100, 10}, {"ofat", 500, 20},
	{RandomFactor, 50, 2}, {RandomFactor, 500, 2}, {RandomFactor, 5000, 2},
}

// scaleLevel is one synthetic one-factor level: a factor of the sweep
// vocabulary and a spec edit.
func scaleLevel(i int) (factor, level string, edit func(*arch.Spec)) {
	// A few of the paper's levels first, so that the findings table has
	// evidence; then levels of two numeric factors, as many as asked.
	fixed := []struct {
		f, l string
		e    func(*arch.Spec)
	}{
		{sweep.FactorKernel, "5", func(s *arch.Spec) { s.SetKernel(5) }},
		{sweep.FactorActivation, "silu", func(s *arch.Spec) { s.Block.Activations = []string{"silu", "silu", "silu"} }},
		{sweep.FactorActivation, "gelu", func(s *arch.Spec) { s.Block.Activations = []string{"gelu", "gelu", "gelu"} }},
		{sweep.FactorSERatio, "0.25", func(s *arch.Spec) { s.Block.SERatio = 0.25 }},
	}
	if i < len(fixed) {
		return fixed[i].f, fixed[i].l, fixed[i].e
	}
	k := i - len(fixed)
	if k%2 == 0 {
		w := 4 + k/2
		return sweep.FactorStemWidth, fmt.Sprint(w), func(s *arch.Spec) { s.Stem.Width = w }
	}
	r := float64(k/2+700) / 10000 // never 0.25, which is a fixed level
	return sweep.FactorSERatio, fmt.Sprintf("%g", r), func(s *arch.Spec) { s.Block.SERatio = r }
}

// scaleRandomFactors are the random design's factors.
var scaleRandomFactors = []struct {
	name   string
	levels []string
	edit   func(*arch.Spec, string)
}{
	{sweep.FactorKernel, []string{"3", "5", "7"}, func(s *arch.Spec, l string) {
		s.SetKernel(map[string]int{"3": 3, "5": 5, "7": 7}[l])
	}},
	{sweep.FactorActivation, []string{"relu", "silu", "gelu"}, func(s *arch.Spec, l string) { s.Block.Activations = []string{l, l, l} }},
	{sweep.FactorSERatio, []string{"0", "0.125", "0.25"}, func(s *arch.Spec, l string) {
		s.Block.SERatio = map[string]float64{"0": 0, "0.125": 0.125, "0.25": 0.25}[l]
	}},
	{sweep.FactorStemWidth, []string{"8", "16", "24", "32"}, func(s *arch.Spec, l string) {
		s.Stem.Width = map[string]int{"8": 8, "16": 16, "24": 24, "32": 32}[l]
	}},
}

// scaleTrials builds the study's finished trials, deterministically:
// metric = baseline + the level's true effect + a per-seed shift shared
// by every variant + the trial's own noise, as sweeps behave (about
// 1-pt seed SD; docs/statistics.md). Every trial carries a spec and a
// full sweep config listing every level, as a real store's do.
func scaleTrials(tb testing.TB, st scaleStudy) []results.Trial {
	tb.Helper()
	base, err := arch.Get("micro")
	require.NoError(tb, err)
	rng := rand.New(rand.NewPCG(uint64(st.variants), uint64(st.seeds)))
	shift := make([]float64, st.seeds)
	for s := range shift {
		shift[s] = 0.01 * rng.NormFloat64()
	}
	type variant struct {
		name, factor, level string
		spec                []byte
		params, macs        int64
		ratio               float64
		effect              float64
	}
	mk := func(name, factor, level string, spec arch.Spec, effect float64) variant {
		params, err := arch.Params(spec)
		require.NoError(tb, err)
		macs, err := arch.MACs(spec, spec.Input.Height, spec.Input.Width)
		require.NoError(tb, err)
		js, err := json.Marshal(spec)
		require.NoError(tb, err)
		return variant{name: name, factor: factor, level: level, spec: js, params: params, macs: macs,
			ratio: arch.WidthDepthRatio(spec), effect: effect}
	}
	vs := []variant{mk(results.BaselineFactor, results.BaselineFactor, results.BaselineFactor, base, 0)}
	var factors []string
	byFactor := map[string][]string{}
	for i := range st.variants - 1 {
		spec := base.Clone()
		// Most levels do little; one in ten moves robust accuracy by a
		// few points either way.
		effect := 0.003 * rng.NormFloat64()
		if i%10 == 3 {
			effect += 0.03 * (rng.Float64() - 0.6)
		}
		if st.design == RandomFactor {
			var parts []string
			for _, f := range scaleRandomFactors {
				l := f.levels[rng.IntN(len(f.levels))]
				f.edit(&spec, l)
				parts = append(parts, f.name+"="+l)
			}
			vs = append(vs, mk(fmt.Sprintf("random-%05d", i), RandomFactor, strings.Join(parts, ";"), spec, effect))
			continue
		}
		factor, level, edit := scaleLevel(i)
		edit(&spec)
		spec.Name = "micro/" + factor + "=" + level
		vs = append(vs, mk(factor+"="+level, factor, level, spec, effect))
		if byFactor[factor] == nil {
			factors = append(factors, factor)
		}
		byFactor[factor] = append(byFactor[factor], level)
	}
	type factorCfg struct {
		Name   string   `json:"name"`
		Levels []string `json:"levels"`
	}
	var fcs []factorCfg
	for _, f := range factors {
		fcs = append(fcs, factorCfg{f, byFactor[f]})
	}
	if st.design == RandomFactor {
		for _, f := range scaleRandomFactors {
			fcs = append(fcs, factorCfg{f.name, f.levels})
		}
	}
	seedList := make([]int64, st.seeds)
	for i := range seedList {
		seedList[i] = int64(i)
	}
	sweepCfg, err := json.Marshal(map[string]any{
		"name": "scale", "baseline": "micro", "tolerance": 0.03, "quantum": 2, "design": st.design,
		"seeds": seedList, "factors": fcs,
		"dataset": map[string]any{"name": "fashion-mnist", "train_size": 10000},
		"train":   map[string]any{"method": "fgsm-rs", "eps": 0.1, "epochs": 2, "batch_size": 128, "lr": 0.05},
		"eval":    map[string]any{"attacks": []string{"pgd10"}, "eps": 0.1, "size": 2000},
		"device":  "cpu",
	})
	require.NoError(tb, err)
	env := map[string]string{"host": "synthetic", "precision": "fp32", "eval_precision": "fp32", "threads": "1"}
	var out []results.Trial
	for _, v := range vs {
		for s := range st.seeds {
			cfg := fmt.Appendf(nil, `{"sweep":%s,"variant":%q,"seed":%d}`, sweepCfg, v.name, s)
			noise := 0.007 * rng.NormFloat64()
			robust := min(1, max(0, 0.45+v.effect+shift[s]+noise))
			clean := min(1, max(0, 0.78+0.3*v.effect+shift[s]+0.007*rng.NormFloat64()))
			out = append(out, results.Trial{Sweep: "scale", Variant: v.name, Factor: v.factor, Level: v.level,
				Seed: int64(s), Params: v.params, MACs: v.macs, WidthDepthRatio: v.ratio, Status: results.StatusDone,
				Spec: v.spec, Config: cfg, Env: env,
				Metrics: map[string]float64{results.CleanAcc: clean, results.PGDAcc: robust, "pgd10_acc": robust,
					results.EvalExamples: 2000, "epoch_chosen": 2, "train_seconds": 30 + rng.Float64()}})
		}
	}
	return out
}

// writeScaleStore puts the trials into a SQLite store at path the way a
// sweep does: planned as pending, then claimed and finished one by one.
func writeScaleStore(tb testing.TB, path string, trials []results.Trial) {
	tb.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, path)
	require.NoError(tb, err)
	defer s.Close()
	_, err = s.AddTrials(ctx, trials)
	require.NoError(tb, err)
	byKey := map[string]results.Trial{}
	for _, t := range trials {
		byKey[t.Key()] = t
	}
	worker := store.NewWorkerID()
	for range trials {
		c, err := s.Claim(ctx, "scale", worker, time.Hour)
		require.NoError(tb, err)
		require.NotNil(tb, c)
		want := byKey[c.Key()]
		c.Metrics, c.Env, c.Seconds = want.Metrics, want.Env, want.Metrics["train_seconds"]
		require.NoError(tb, s.Finish(ctx, *c))
	}
}

// scaleStore returns the study's store: under $GUIDELINES_SCALE_STORES
// when set (kept, and reused by later runs and by the CLI measurement),
// else in a temporary directory.
func scaleStore(tb testing.TB, st scaleStudy) string {
	tb.Helper()
	dir := os.Getenv("GUIDELINES_SCALE_STORES")
	if dir == "" {
		dir = tb.TempDir()
	}
	path := filepath.Join(dir, st.name()+".db")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".partial"
	require.NoError(tb, os.RemoveAll(tmp))
	writeScaleStore(tb, tmp, scaleTrials(tb, st))
	require.NoError(tb, os.Rename(tmp, path))
	return path
}

// BenchmarkReportAtScale reads each synthetic store and writes its full
// report, as `robarch guidelines report` does (docs/reliability.md,
// "Report at scale"):
//
//	GUIDELINES_SCALE_STORES=/tmp/scale go test ./guidelines -run '^$' -bench ReportAtScale -benchtime 1x
//
// Without GUIDELINES_SCALE_STORES every run writes the stores afresh into
// a temporary directory, about 2 minutes for the 10,000-trial ones.
func BenchmarkReportAtScale(b *testing.B) {
	for _, st := range scaleStudies {
		b.Run(st.name(), func(b *testing.B) {
			path := scaleStore(b, st)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				s, err := store.Open(ctx, path)
				require.NoError(b, err)
				trials, err := s.List(ctx, store.Filter{Sweep: "scale"})
				require.NoError(b, err)
				require.NoError(b, s.Close())
				_, err = Report(ctx, trials, b.TempDir(), Options{}, RecommendOptions{})
				require.NoError(b, err)
			}
		})
	}
}

// The synthetic stores hold what the generator made, through the real
// store: every trial done, with its metrics. With $GUIDELINES_SCALE_STORES
// set it writes every size there (for the benchmark and the CLI), else
// only the smallest of each design.
func TestScaleStores(t *testing.T) {
	all := os.Getenv("GUIDELINES_SCALE_STORES") != ""
	for _, st := range scaleStudies {
		if !all && st.variants*st.seeds > 100 {
			continue
		}
		t.Run(st.name(), func(t *testing.T) {
			want := scaleTrials(t, st)
			ctx := context.Background()
			s, err := store.Open(ctx, scaleStore(t, st))
			require.NoError(t, err)
			defer s.Close()
			got, err := s.List(ctx, store.Filter{Sweep: "scale"})
			require.NoError(t, err)
			require.Len(t, got, st.variants*st.seeds)
			byKey := map[string]results.Trial{}
			for _, g := range got {
				byKey[g.Key()] = g
			}
			for _, w := range want {
				g, ok := byKey[w.Key()]
				require.True(t, ok, w.Key())
				require.Equal(t, results.StatusDone, g.Status)
				require.Equal(t, w.Metrics, g.Metrics, w.Key())
			}
		})
	}
}

// The bootstrap's normal equations from a 0/1 design's non-zero columns
// equal the dense XᵀX and Xᵀy bit for bit, so the intervals are the ones
// the dense refits gave.
func TestZeroOneRowsNormalEquations(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, cols = 200, 9
	x := make([][]float64, rows)
	y := make([]float64, rows)
	for i := range x {
		x[i] = make([]float64, cols)
		x[i][0] = 1
		for j := 1; j < cols; j++ {
			if rng.IntN(3) == 0 {
				x[i][j] = 1
			}
		}
		y[i] = 0.4 + 0.1*rng.NormFloat64()
	}
	z := newZeroOneRows(x)
	require.Less(t, len(z.patterns), rows, "rows share patterns")
	for round := range 3 {
		idx := make([]int, rows)
		for i := range idx {
			idx[i] = rng.IntN(rows)
		}
		sub, ys := make([][]float64, rows), make([]float64, rows)
		for r, i := range idx {
			sub[r], ys[r] = x[i], y[i]
		}
		wantXtX := make([][]float64, cols)
		wantXty := make([]float64, cols)
		for j := range wantXtX {
			wantXtX[j] = make([]float64, cols)
		}
		for r, row := range sub {
			for j := range cols {
				wantXty[j] += row[j] * ys[r]
				for k := range cols {
					wantXtX[j][k] += row[j] * row[k]
				}
			}
		}
		xtx, xty := z.normal(idx, y)
		require.Equal(t, wantXtX, xtx, "round %d", round)
		require.Equal(t, wantXty, xty, "round %d", round)
		got, ok := solveNormal(xtx, xty)
		require.True(t, ok)
		want, ok := leastSquares(sub, ys)
		require.True(t, ok)
		require.Equal(t, want, got, "round %d", round)
	}
}

func TestEndsAndClip(t *testing.T) {
	seq := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint(i)
		}
		return out
	}
	tests := []struct {
		n, limit int
		rows     int
		gapAt    int
	}{{3, 4, 3, 3}, {4, 4, 4, 4}, {5, 4, 4, 2}, {101, 40, 40, 20}}
	for _, tt := range tests {
		rows, gapAt := ends(seq(tt.n), tt.limit)
		assert.Len(t, rows, tt.rows, "%d of %d", tt.n, tt.limit)
		assert.Equal(t, tt.gapAt, gapAt)
		assert.Equal(t, fmt.Sprint(tt.n-1), rows[len(rows)-1], "the last element is kept")
	}
	assert.Equal(t, seq(maxItems), clip(seq(maxItems)))
	got := clip(seq(maxItems + 1))
	assert.Len(t, got, 2*clipEnds+1)
	assert.Equal(t, fmt.Sprintf("… %d more", maxItems+1-2*clipEnds), got[clipEnds])
	assert.Equal(t, fmt.Sprint(maxItems), got[len(got)-1])
}

// A one-factor study of 120 levels: the page shows the 20 best and 20
// worst levels in its table and effects plots, counts the rest with
// their verdicts, lists only the flagged spread checks, draws EDFs of
// many levels with a grey remainder, and effects.csv has every level.
func TestReportAtScaleShowsTheEnds(t *testing.T) {
	trials := scaleTrials(t, scaleStudy{"ofat", 121, 3})
	dir, a := writeSynthReport(t, trials)
	require.Len(t, a.Effects, 120)

	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	page := string(md)
	hidden := a.Effects[maxRows/2 : 120-maxRows/2]
	gap := fmt.Sprintf("| … | … 80 more levels (ranks 21–100): %s; every level in effects.csv |", tally(hidden))
	assert.Contains(t, page, gap)
	for _, e := range a.Effects {
		row := fmt.Sprintf("| %d | `%s` |", e.Rank, e.Label())
		if e.Rank <= maxRows/2 || e.Rank > 120-maxRows/2 {
			assert.Contains(t, page, row)
		} else {
			assert.NotContains(t, page, row)
		}
	}
	assert.Contains(t, page, "\n| … 81 more variants between these (by mean PGD accuracy)")
	assert.Contains(t, page, "levels checked, the")
	assert.Regexp(t, `se_ratio \| 0\.07, 0\.0701, 0\.0702, 0\.0703, 0\.0704, … \d+ more, `, page, "a factor's levels are clipped")

	html, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	require.NoError(t, err)
	// The gap row spans the table: as many columns as the header has.
	header := strings.SplitN(strings.SplitN(string(html), "<thead><tr>", 2)[1], "</tr></thead>", 2)[0]
	assert.Contains(t, string(html), fmt.Sprintf(`<tr class="gap"><td colspan="%d">… 80 more levels`, strings.Count(header, "<th>")))

	f, err := os.Open(filepath.Join(dir, EffectsCSVFile))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 121)
	assert.Equal(t, []string{"1", a.Effects[0].Factor, a.Effects[0].Level}, rows[1][:3])
	r, _ := a.Effects[57].Estimate(a.RobustMetric)
	assert.Equal(t, strconv.FormatFloat(Points(r.Effect), 'f', -1, 64), rows[58][slices.Index(rows[0], "pgd_acc_effect")])

	svg, err := os.ReadFile(filepath.Join(dir, PlotsDir, "effects-robust.svg"))
	require.NoError(t, err)
	assert.Contains(t, string(svg), "(80 more levels)")
	assert.NotContains(t, string(svg), hidden[0].Label())
	png, err := os.ReadFile(filepath.Join(dir, PlotsDir, "effects-robust.png"))
	require.NoError(t, err)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(png))
	require.NoError(t, err)
	assert.Less(t, cfg.Height, 1500, "41 rows, not 120")

	edf, err := os.ReadFile(filepath.Join(dir, PlotsDir, "edf-stem_width.svg"))
	require.NoError(t, err)
	stem := a.Factors[slices.IndexFunc(a.Factors, func(f FactorSummary) bool { return f.Factor == sweep.FactorStemWidth })]
	assert.Contains(t, string(edf), fmt.Sprintf(">%d more levels<", len(stem.Levels)-maxCurves))
	assert.Equal(t, maxCurves+1, strings.Count(string(edf), "(n=3)"), "the baseline and the best and worst levels in the legend")
	kernel, err := os.ReadFile(filepath.Join(dir, PlotsDir, "edf-kernel.svg"))
	require.NoError(t, err)
	assert.NotContains(t, string(kernel), "more levels", "a factor of few levels is drawn whole")
}

// The replication table of a split study of many levels shows its ends
// and tallies the rest, naming any that contradict.
func TestReportAtScaleSplitSeeds(t *testing.T) {
	trials := scaleTrials(t, scaleStudy{"ofat", 61, 4})
	dir := t.TempDir()
	a, err := Report(context.Background(), trials, dir, Options{SplitSeeds: true}, RecommendOptions{})
	require.NoError(t, err)
	r := a.Replication
	require.NotNil(t, r)
	require.Len(t, r.Levels, 60)
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	section := strings.SplitN(strings.SplitN(string(md), "### Replication", 2)[1], "### Per factor", 2)[0]
	for k, l := range r.Levels {
		row := fmt.Sprintf("| `%s` |", l.Label)
		if k < maxRows/2 || k >= 60-maxRows/2 {
			assert.Contains(t, section, row)
		} else {
			assert.NotContains(t, section, row)
		}
	}
	assert.Contains(t, section, "| "+replicationGap(r.Levels[maxRows/2:60-maxRows/2])+" |")
	assert.Contains(t, replicationGap([]ReplicatedLevel{{Label: "kernel=5", Agreement: Contradict}, {Label: "x", Agreement: Agree}}),
		"… 2 more levels: 1 agree, 1 contradict (contradicting: kernel=5); every level in guidelines.json")
}

// The page of a study of 120 levels loads in Chromium as a small one
// does: no errors, every plot decodes, every table (gap rows included)
// fits a 1300-px window.
func TestReportAtScaleLoadsInChromium(t *testing.T) {
	dir, _ := writeSynthReport(t, scaleTrials(t, scaleStudy{"ofat", 121, 3}))
	lp := loadInChromium(t, filepath.Join(dir, HTMLFile))
	assert.Contains(t, lp.body, "… 80 more levels (ranks 21–100)")
	assert.Contains(t, lp.body, "… 81 more variants between these")
	assert.Equal(t, lp.images, lp.decoded, "every embedded plot decodes")
	assert.Empty(t, lp.problems, "the page loads without errors")
	assert.LessOrEqual(t, lp.overflow, 0, "every table fits a 1300-px-wide window")
}
