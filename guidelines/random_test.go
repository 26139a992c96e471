package guidelines

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
)

// randomFactor is a factor of a synthetic random sweep: its levels, how
// each changes the spec and each level's true additive robust effect.
type randomFactor struct {
	name   string
	levels []string
	edit   func(s *arch.Spec, level string)
	effect map[string]float64
}

// synthRandomSweep samples n variants of the joint space around micro
// (one seed each) plus a 3-seed baseline; robust accuracy is the sum of
// the levels' effects plus Gaussian noise of sd 0.3 pts.
func synthRandomSweep(t *testing.T, n int, factors ...randomFactor) []results.Trial {
	t.Helper()
	base, err := arch.Get("micro")
	require.NoError(t, err)
	budget, err := arch.Params(base)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	trial := func(variant, factor, level string, seed int64, spec arch.Spec, robust float64) results.Trial {
		js, err := json.Marshal(spec)
		require.NoError(t, err)
		params, err := arch.Params(spec)
		require.NoError(t, err)
		return results.Trial{Sweep: "rand", Variant: variant, Factor: factor, Level: level, Seed: seed,
			Params: params, WidthDepthRatio: arch.WidthDepthRatio(spec), Status: results.StatusDone, Spec: js,
			Metrics: map[string]float64{results.CleanAcc: 0.8 + 0.003*rng.NormFloat64(), results.PGDAcc: robust + 0.003*rng.NormFloat64()}}
	}
	var out []results.Trial
	for s := range 3 {
		out = append(out, trial(results.BaselineFactor, results.BaselineFactor, results.BaselineFactor, int64(s), base, 0.45))
	}
	for i := range n {
		spec := base.Clone()
		robust := 0.45
		var parts []string
		for _, f := range factors {
			l := f.levels[rng.IntN(len(f.levels))]
			f.edit(&spec, l)
			robust += f.effect[l]
			parts = append(parts, f.name+"="+l)
		}
		fitted, _, err := arch.Fit(spec, budget, arch.FitOptions{Quantum: 2})
		require.NoError(t, err)
		out = append(out, trial(fmt.Sprintf("random-%03d", i), RandomFactor, strings.Join(parts, ";"), 0, fitted, robust))
	}
	return out
}

var (
	randKernel = randomFactor{name: sweep.FactorKernel, levels: []string{"3", "5"},
		edit:   func(s *arch.Spec, l string) { s.SetKernel(map[string]int{"3": 3, "5": 5}[l]) },
		effect: map[string]float64{"5": -0.04}}
	randAct = randomFactor{name: sweep.FactorActivation, levels: []string{"relu", "silu", "gelu"},
		edit:   func(s *arch.Spec, l string) { s.Block.Activations = []string{l, l, l} },
		effect: map[string]float64{"silu": 0.05, "gelu": 0.03}}
	randSE = randomFactor{name: sweep.FactorSERatio, levels: []string{"0", "0.25"},
		edit: func(s *arch.Spec, l string) {
			s.Block.SERatio = map[string]float64{"0": 0, "0.25": 0.25}[l]
		},
		effect: map[string]float64{}}
)

func TestRandomDesignRecoversEffects(t *testing.T) {
	trials := synthRandomSweep(t, 40, randKernel, randAct, randSE)
	a, err := Analyze(trials, Options{Resamples: 500})
	require.NoError(t, err)
	assert.Equal(t, RandomFactor, a.Design)
	assert.Equal(t, map[string]string{sweep.FactorKernel: "3", sweep.FactorActivation: "relu", sweep.FactorSERatio: "0"}, a.References,
		"each factor's reference is the baseline's own setting")

	tests := []struct {
		label, verdict string
		effect         float64
	}{
		{"activation=silu", Helps, 0.05},
		{"activation=gelu", Helps, 0.03},
		{"kernel=5", Hurts, -0.04},
		{"se_ratio=0.25", NoClearEffect, 0},
	}
	require.Len(t, a.Effects, len(tests), "one effect per non-reference level")
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			e := effectOf(t, a, tt.label)
			assert.Equal(t, tt.verdict, e.Verdict)
			r, _ := e.Estimate(results.PGDAcc)
			assert.InDelta(t, tt.effect, r.Effect, 0.005, "regression recovers the true effect within 0.5 pts")
			require.NotNil(t, r.CI)
			assert.True(t, r.CI.Low <= tt.effect && tt.effect <= r.CI.High, "interval [%g, %g] covers %g", r.CI.Low, r.CI.High, tt.effect)
			assert.Contains(t, e.Method, "regression vs "+e.Factor+"="+a.References[e.Factor])
		})
	}
	assert.Equal(t, "activation=silu", a.Effects[0].Label())
	// EDFs cover every level, the reference included.
	for _, set := range a.EDFs {
		if set.Factor == sweep.FactorActivation {
			var labels []string
			for _, c := range set.Curves {
				labels = append(labels, c.Label)
			}
			assert.Equal(t, []string{"activation=gelu", "activation=relu", "activation=silu"}, labels)
		}
	}

	rec, err := Recommend(a, nil, RecommendOptions{})
	require.NoError(t, err)
	assert.Len(t, rec.Applied, 1, "only one activation can be applied: %v", rec.Applied)
	assert.Contains(t, rec.Applied[0], "activation=silu")
	assert.Contains(t, rec.YAML, "- silu")
}

func TestRandomDesignNotIdentifiable(t *testing.T) {
	// Kernel 5 always comes with SiLU: their effects cannot be told apart.
	together := randomFactor{name: sweep.FactorKernel, levels: []string{"3", "5"},
		edit: func(s *arch.Spec, l string) {
			if l == "5" {
				s.SetKernel(5)
				s.Block.Activations = []string{"silu", "silu", "silu"}
			}
		}, effect: map[string]float64{"5": 0.02}}
	trials := synthRandomSweep(t, 20, together)
	for i := range trials {
		if trials[i].Factor == RandomFactor {
			act := "relu"
			if strings.Contains(trials[i].Level, "kernel=5") {
				act = "silu"
			}
			trials[i].Level += ";activation=" + act
		}
	}
	a, err := Analyze(trials, Options{Resamples: 300})
	require.NoError(t, err)
	var notes []string
	for _, e := range a.Effects {
		if e.Verdict == Inconclusive {
			notes = append(notes, e.Label()+": "+e.Note)
		}
	}
	require.Len(t, notes, 1, "one of the two confounded levels is not identifiable")
	assert.Contains(t, notes[0], "not identifiable")
}

func TestLeastSquares(t *testing.T) {
	// y = 1 + 2·x1 − 3·x2, exactly.
	x := [][]float64{{1, 0, 0}, {1, 1, 0}, {1, 0, 1}, {1, 1, 1}, {1, 2, 1}}
	y := make([]float64, len(x))
	for i, r := range x {
		y[i] = 1 + 2*r[1] - 3*r[2]
	}
	b, ok := leastSquares(x, y)
	require.True(t, ok)
	assert.InDeltaSlice(t, []float64{1, 2, -3}, b, 1e-9)

	// A duplicated column is singular, and independentColumns drops it.
	dup := [][]float64{{1, 0, 0}, {1, 1, 1}, {1, 0, 0}, {1, 1, 1}}
	_, ok = leastSquares(dup, []float64{1, 2, 3, 4})
	assert.False(t, ok)
	assert.Equal(t, []bool{true, true, false}, independentColumns(dup))
}

// A factor package sweep does not define cannot be compared with the
// baseline's setting; the note says so rather than claiming no level
// matches.
func TestRandomDesignUnknownFactorIsNoted(t *testing.T) {
	trials := synthRandomSweep(t, 40, randKernel, randAct)
	for i := range trials {
		if trials[i].Factor == RandomFactor {
			trials[i].Level += ";colour=" + []string{"blue", "red"}[i%2]
		}
	}
	a, err := Analyze(trials, Options{Resamples: 200})
	require.NoError(t, err)
	var note string
	for _, n := range a.Notes {
		if strings.Contains(n, "colour effects") {
			note = n
		}
	}
	assert.Contains(t, note, "whether a level is the baseline's setting is unknown")
	assert.Contains(t, note, "unknown factor")
	assert.Contains(t, a.References, "colour")
}
