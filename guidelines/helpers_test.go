package guidelines

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
)

// level is one synthetic variant: how its spec differs from the baseline
// and its true effects (fractions) on clean and robust accuracy.
type level struct {
	factor, level string
	edit          func(*arch.Spec)
	clean, robust float64
	seeds         int // 0 means the sweep's default
}

// Per-seed offsets of the synthetic noise, shared by every variant of a
// seed as a seed's data order is: the paired analysis removes them.
var noise = []float64{-0.004, 0.004, -0.002, 0.002, -0.001, 0.001}

// jitter is each trial's own noise (what the paired model's residual
// variance measures): a fixed pattern per variant, ±0.2 pts at most.
func jitter(variant string, seed int) float64 {
	h := 0
	for _, c := range variant {
		h = (h*31 + int(c)) % 1009
	}
	return 0.001 * float64((h+seed*3)%5-2)
}

const (
	baseClean  = 0.80
	baseRobust = 0.45
)

// synthSweep builds a finished one-factor sweep around the micro preset:
// a baseline and the given levels, each with `seeds` seeds, specs fitted
// to the baseline's budget as the planner does. Metrics are baseline +
// effect + noise; AA (when withAA) is PGD − 2 pts.
func synthSweep(t *testing.T, seeds int, withAA bool, levels ...level) []results.Trial {
	t.Helper()
	base, err := arch.Get("micro")
	require.NoError(t, err)
	budget, err := arch.Params(base)
	require.NoError(t, err)
	var out []results.Trial
	add := func(factor, lvl string, spec arch.Spec, clean, robust float64, n int) {
		variant := factor + "=" + lvl
		if factor == results.BaselineFactor {
			variant = results.BaselineFactor
		}
		params, err := arch.Params(spec)
		require.NoError(t, err)
		macs, err := arch.MACs(spec, spec.Input.Height, spec.Input.Width)
		require.NoError(t, err)
		js, err := json.Marshal(spec)
		require.NoError(t, err)
		cfg := []byte(`{"sweep":{"name":"synth","quantum":2,"tolerance":0.02},"variant":"` + variant + `"}`)
		for s := range n {
			m := map[string]float64{
				results.CleanAcc: baseClean + clean + noise[s] + jitter(variant+"clean", s),
				results.PGDAcc:   baseRobust + robust + noise[s] + jitter(variant, s),
			}
			if withAA {
				m[results.AAAcc] = m[results.PGDAcc] - 0.02
			}
			out = append(out, results.Trial{Sweep: "synth", Variant: variant, Factor: factor, Level: lvl,
				Seed: int64(s), Params: params, MACs: macs, WidthDepthRatio: arch.WidthDepthRatio(spec),
				Status: results.StatusDone, Metrics: m, Spec: js, Config: cfg})
		}
	}
	add(results.BaselineFactor, results.BaselineFactor, base, 0, 0, seeds)
	for _, l := range levels {
		spec := base.Clone()
		if l.edit != nil {
			l.edit(&spec)
		}
		fitted, _, err := arch.Fit(spec, budget, arch.FitOptions{Quantum: 2})
		require.NoError(t, err, "fit %s=%s", l.factor, l.level)
		n := seeds
		if l.seeds > 0 {
			n = l.seeds
		}
		add(l.factor, l.level, fitted, l.clean, l.robust, n)
	}
	return out
}

// Common synthetic levels.
var (
	silu = level{factor: sweep.FactorActivation, level: "silu", clean: 0.005, robust: 0.05,
		edit: func(s *arch.Spec) { s.Block.Activations = []string{"silu", "silu", "silu"} }}
	kernel5 = level{factor: sweep.FactorKernel, level: "5", clean: -0.01, robust: -0.04,
		edit: func(s *arch.Spec) { s.SetKernel(5) }}
	se25 = level{factor: sweep.FactorSERatio, level: "0.25", clean: 0, robust: 0,
		edit: func(s *arch.Spec) { s.Block.SERatio = 0.25 }}
	deeper = level{factor: sweep.FactorDepthWidth, level: "deeper-narrower", clean: 0, robust: 0.03, seeds: 1,
		edit: func(s *arch.Spec) { s.SetDepths(5, 5, 5) }}
)

func withStatus(trials []results.Trial, variant string, seed int64, st results.Status) []results.Trial {
	for i := range trials {
		if trials[i].Variant == variant && trials[i].Seed == seed {
			trials[i].Status = st
			if st != results.StatusDone {
				trials[i].Metrics = nil
			}
			return trials
		}
	}
	panic(fmt.Sprintf("no trial %s/%d", variant, seed))
}
