package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/results"
)

// Variant is one network of a sweep, fitted to the budget.
type Variant struct {
	Name            string    `json:"name"`
	Factor          string    `json:"factor"`
	Level           string    `json:"level"`
	Params          int64     `json:"params"`
	MACs            int64     `json:"macs"`
	Deviation       float64   `json:"deviation"` // (params − budget) / budget
	WidthDepthRatio float64   `json:"width_depth_ratio"`
	Feasible        bool      `json:"feasible"`
	Reason          string    `json:"reason,omitempty"`
	Spec            arch.Spec `json:"spec"`
}

// Plan is the full list of variants of a sweep.
type Plan struct {
	Sweep    string    `json:"sweep"`
	Budget   int64     `json:"budget"`
	Input    [3]int    `json:"input"` // channels, height, width the MACs are counted at
	Variants []Variant `json:"variants"`
}

// Feasible returns the variants that fit the budget.
func (p *Plan) Feasible() []Variant {
	var out []Variant
	for _, v := range p.Variants {
		if v.Feasible {
			out = append(out, v)
		}
	}
	return out
}

// MakePlan enumerates the sweep's variants. Every variant, the baseline
// included, is refitted to the budget; one that cannot be is listed with
// the reason and the nearest reachable count, never silently dropped.
func MakePlan(f *File) (*Plan, error) {
	base, err := arch.GetOrLoad(f.Baseline)
	if err != nil {
		return nil, fmt.Errorf("sweep %s: baseline: %w", f.Name, err)
	}
	base = base.WithDefaults()
	budget, err := planBudget(f, base)
	if err != nil {
		return nil, err
	}
	p := &Plan{Sweep: f.Name, Budget: budget,
		Input: [3]int{base.Input.Channels, base.Input.Height, base.Input.Width}}
	add := func(name, factor, level string, spec arch.Spec, applyErr error) {
		v := Variant{Name: name, Factor: factor, Level: level}
		if applyErr != nil {
			v.Reason = applyErr.Error()
			p.Variants = append(p.Variants, v)
			return
		}
		spec.Name = base.Name + "/" + name
		p.Variants = append(p.Variants, fitVariant(v, spec, budget, f))
	}
	add(results.BaselineFactor, results.BaselineFactor, results.BaselineFactor, base, nil)

	switch f.Design {
	case OneFactor:
		for _, fa := range f.Factors {
			for _, level := range fa.Levels {
				spec, err := ApplyLevel(base, fa.Name, level)
				add(fa.Name+"="+level, fa.Name, level, spec, err)
			}
		}
	case Random:
		rng := rand.New(rand.NewPCG(uint64(f.Seeds.Order()[0]), 0x5eed))
		for i := 0; i < f.Samples; i++ {
			spec, levels := base, make([]FactorLevel, 0, len(f.Factors))
			var err error
			for _, fa := range f.Factors {
				level := fa.Levels[rng.IntN(len(fa.Levels))]
				levels = append(levels, FactorLevel{Factor: fa.Name, Level: level})
				if spec, err = ApplyLevel(spec, fa.Name, level); err != nil {
					break
				}
			}
			add(fmt.Sprintf("random-%03d", i), string(Random), SampleLevel(levels), spec, err)
		}
	}
	return p, nil
}

func planBudget(f *File, base arch.Spec) (int64, error) {
	if f.Budget > 0 {
		return int64(f.Budget), nil
	}
	n, err := arch.Params(base)
	if err != nil {
		return 0, fmt.Errorf("sweep %s: baseline: %w", f.Name, err)
	}
	return n, nil
}

func fitVariant(v Variant, spec arch.Spec, budget int64, f *File) Variant {
	fitted, n, err := arch.Fit(spec, budget, arch.FitOptions{Tolerance: f.Tolerance, ScaleDepth: f.ScaleDepth, Quantum: f.Quantum})
	var inf *arch.InfeasibleError
	switch {
	case errors.As(err, &inf):
		v.Reason = err.Error()
		v.Params = inf.Nearest
		v.Deviation = deviation(inf.Nearest, budget)
		v.Spec = inf.NearestSpec
		return v
	case err != nil:
		v.Reason = err.Error()
		return v
	}
	macs, err := arch.MACs(fitted, fitted.Input.Height, fitted.Input.Width)
	if err != nil {
		v.Reason = err.Error()
		return v
	}
	fitted.Name = spec.Name
	v.Spec, v.Params, v.MACs = fitted, n, macs
	v.Deviation = deviation(n, budget)
	v.WidthDepthRatio = arch.WidthDepthRatio(fitted)
	v.Feasible = true
	return v
}

func deviation(n, budget int64) float64 {
	d := float64(n-budget) / float64(budget)
	return math.Round(d*1e6) / 1e6
}

// Trials expands the feasible variants into one trial per seed of the
// first round: every seed of a fixed list, the first start seeds of an
// adaptive policy (later rounds come from NextRound).
func (p *Plan) Trials(f *File) ([]results.Trial, error) {
	seeds := f.Seeds.Order()[:f.Seeds.Looks()[0]]
	var names []string
	for _, v := range p.Feasible() {
		names = append(names, v.Name)
	}
	return p.TrialsFor(f, names, seeds)
}

// TrialsFor is the trials of the named variants for the given seeds.
func (p *Plan) TrialsFor(f *File, variants []string, seeds []int64) ([]results.Trial, error) {
	var out []results.Trial
	for _, v := range p.Feasible() {
		if !slices.Contains(variants, v.Name) {
			continue
		}
		spec, err := json.Marshal(v.Spec)
		if err != nil {
			return nil, err
		}
		for _, seed := range seeds {
			cfg, err := json.Marshal(TrialConfig{Sweep: f, Variant: v.Name, Seed: seed})
			if err != nil {
				return nil, err
			}
			out = append(out, results.Trial{
				Sweep: f.Name, Variant: v.Name, Factor: v.Factor, Level: v.Level, Seed: seed,
				Params: v.Params, MACs: v.MACs, WidthDepthRatio: v.WidthDepthRatio,
				Status: results.StatusPending, Spec: spec, Config: cfg,
			})
		}
	}
	return out, nil
}

// TrialConfig is everything a worker needs to run a trial; it travels
// with the trial in the store, so workers elsewhere need no sweep file.
type TrialConfig struct {
	Sweep   *File  `json:"sweep"`
	Variant string `json:"variant"`
	Seed    int64  `json:"seed"`
}

// DecodeTrialConfig reads a trial's stored config.
func DecodeTrialConfig(t results.Trial) (TrialConfig, error) {
	c, err := ParseTrialConfig(t.Config)
	if err != nil {
		return c, fmt.Errorf("trial %s: %w", t.Key(), err)
	}
	return c, nil
}

// ParseTrialConfig reads a stored trial config (the JSON of a TrialConfig);
// it is the one decoder of what a sweep stores with its trials.
func ParseTrialConfig(config json.RawMessage) (TrialConfig, error) {
	var c TrialConfig
	if err := json.Unmarshal(config, &c); err != nil || c.Sweep == nil {
		return c, fmt.Errorf("stored config unreadable (planned by another robarch version?): %v", err)
	}
	return c, nil
}
