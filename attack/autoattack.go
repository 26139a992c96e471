package attack

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/attackname"
)

// AutoAttack versions.
const (
	// Standard is APGD-CE, APGD-T (9 targets), FAB-T (9 targets) and
	// Square (5000 queries), as in Croce & Hein 2020.
	Standard = "standard"
	// Fast is APGD-CE and APGD-T: the two attacks that, on the models of
	// the reference paper, account for almost all of standard's success,
	// at a fraction of its cost.
	Fast = "fast"
)

// AutoAttack is the parameter-free ensemble of Croce & Hein 2020: its
// attacks run one after another, each only on the samples every previous
// attack failed to fool, and a sample counts as robust only if none fooled
// it (the per-sample worst case).
type AutoAttack struct {
	Version string  // Standard (default) or Fast
	Norm    Norm    // Linf (default) or L2
	Eps     float64 // radius of the ball
	Seed    int64   // every component reseeds with it, as in the reference
	// Budgets; 0 means the standard value. Smaller budgets are for tests
	// and quick looks; numbers to report use the standard ones.
	Steps   int // APGD and FAB iterations (100)
	Targets int // APGD-T and FAB-T target classes (9)
	Queries int // Square queries (5000)
	// Log receives one line per component; nil means slog.Default().
	Log *slog.Logger
}

// NewAutoAttack is AutoAttack with the given version ("standard" or
// "fast"), norm, radius and seed, validated.
func NewAutoAttack(version string, norm Norm, eps float64, seed int64) (*AutoAttack, error) {
	a := &AutoAttack{Version: version, Norm: norm, Eps: eps, Seed: seed}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *AutoAttack) withDefaults() AutoAttack {
	c := *a
	if c.Version == "" {
		c.Version = Standard
	}
	if c.Norm == "" {
		c.Norm = Linf
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Name is aa (standard) or aa-fast.
func (a *AutoAttack) Name() string {
	if a.withDefaults().Version == Fast {
		return string(attackname.AAFast)
	}
	return string(attackname.AA)
}

// Validate reports the first bad field.
func (a *AutoAttack) Validate() error {
	c := a.withDefaults()
	if c.Version != Standard && c.Version != Fast {
		return fmt.Errorf("autoattack: Version %q: want %q or %q", c.Version, Standard, Fast)
	}
	if c.Steps < 0 || c.Targets < 0 || c.Queries < 0 {
		return fmt.Errorf("autoattack: Steps %d, Targets %d, Queries %d: none may be negative (0 means the standard budget)", c.Steps, c.Targets, c.Queries)
	}
	for _, at := range c.components() {
		if err := at.(interface{ Validate() error }).Validate(); err != nil {
			return fmt.Errorf("autoattack: %w", err)
		}
	}
	return nil
}

// Components are the ensemble's attacks in the order they run.
func (a *AutoAttack) Components() []Attack { return a.withDefaults().components() }

func (c AutoAttack) components() []Attack {
	out := []Attack{
		APGD{Norm: c.Norm, Eps: c.Eps, Steps: c.Steps, Loss: CE, Seed: c.Seed},
		APGD{Norm: c.Norm, Eps: c.Eps, Steps: c.Steps, Targeted: true, Targets: c.Targets, Seed: c.Seed},
	}
	if c.Version == Standard {
		out = append(out,
			FAB{Norm: c.Norm, Eps: c.Eps, Steps: c.Steps, Targets: c.Targets, Seed: c.Seed},
			Square{Norm: c.Norm, Eps: c.Eps, Queries: c.Queries, Seed: c.Seed})
	}
	return out
}

// Stage is the state after one component of an ensemble ran on a batch.
type Stage struct {
	Name    string  // the component's name
	Robust  int     // samples still classified correctly after it
	Seconds float64 // time it took
}

// Perturb implements Attack.
func (a *AutoAttack) Perturb(m Model, x, y *ts.Tensor) (*ts.Tensor, error) {
	adv, _, err := a.PerturbStages(m, x, y)
	return adv, err
}

// PerturbStages is Perturb that also reports how many samples remained
// robust after each component (cumulatively, as the reference prints).
func (a *AutoAttack) PerturbStages(m Model, x, y *ts.Tensor) (adv *ts.Tensor, stages []Stage, err error) {
	if err := a.Validate(); err != nil {
		return nil, nil, err
	}
	c := a.withDefaults()
	defer recoverTorch(&err, a.Name())
	var best, robust state
	defer best.free()
	defer robust.free()
	best.set(x.Detach(false))
	robust.t = correct(m, x, y)
	for _, at := range c.components() {
		start := time.Now()
		var s scope
		idx, k := s.nonzero(robust.t)
		if k > 0 {
			xs, ys := s.rows(x, idx), s.rows(y, idx)
			found, err := at.Perturb(m, xs, ys)
			if err != nil {
				s.free()
				return nil, nil, fmt.Errorf("%s: %w", a.Name(), err)
			}
			s.keep(found)
			wrong := s.t(s.keep(predict(m, found)).NeTensor(ys, false))
			fidx, nf := s.nonzero(wrong)
			if nf > 0 {
				pos := s.rows(idx, fidx)
				best.set(best.t.IndexCopy(0, pos, s.rows(found, fidx), false))
				falses := s.t(ts.Zeros([]int64{nf}, gotch.Bool, device(x)))
				robust.set(robust.t.IndexCopy(0, pos, falses, false))
			}
		}
		s.free()
		st := Stage{Name: at.Name(), Robust: int(count(robust.t)), Seconds: time.Since(start).Seconds()}
		stages = append(stages, st)
		c.Log.Debug("autoattack component", "attack", st.Name, "attacked", k, "robust", st.Robust, "seconds", st.Seconds)
	}
	return enforce(best.t, x, c.Eps, c.Norm), stages, nil
}
