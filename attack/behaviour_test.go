package attack

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/torchrt"
)

func TestSameSeedSamePerturbation(t *testing.T) {
	f := trained(t, 10)
	for _, tc := range []struct {
		a func(seed int64) Attack
		// differ: another seed gives another result (1), the same (−1),
		// or either (0: FAB's random restarts only matter on samples its
		// deterministic first run missed).
		differ int
	}{
		{func(s int64) Attack { return PGD{Eps: epsLinf, Steps: 5, RandomStart: true, Seed: s} }, 1},
		{func(s int64) Attack { return PGD{Norm: L2, Eps: epsL2, Steps: 5, RandomStart: true, Seed: s} }, 1},
		{func(s int64) Attack { return APGD{Eps: 0.05, Steps: 10, Seed: s} }, 1},
		{func(s int64) Attack { return APGD{Eps: 0.05, Steps: 10, Targeted: true, Targets: 2, Seed: s} }, 1},
		{func(s int64) Attack { return FAB{Eps: epsLinf, Steps: 10, Targets: 2, Seed: s} }, -1},
		{func(s int64) Attack { return FAB{Eps: 0.05, Steps: 10, Targets: 2, Restarts: 2, Seed: s} }, 0},
		{func(s int64) Attack { return Square{Eps: 0.1, Queries: 100, Seed: s} }, 1},
		{func(s int64) Attack { return Square{Norm: L2, Eps: 1.5, Queries: 100, Seed: s} }, 1},
		{func(s int64) Attack { return &AutoAttack{Eps: 0.05, Steps: 5, Targets: 2, Queries: 50, Seed: s} }, 1},
	} {
		name := tc.a(0).Name()
		norm, _ := normOf(tc.a(0))
		t.Run(name+"-"+string(norm), func(t *testing.T) {
			onTorch(t, func() error {
				run := func(seed int64) *ts.Tensor {
					adv, err := tc.a(seed).Perturb(f.net.model(), f.x, f.y)
					require.NoError(t, err)
					return adv
				}
				a, b, c := run(7), run(7), run(8)
				defer drop(a, b, c)
				assert.Zero(t, maxAbsDiff(a, b), "same seed, same perturbation")
				switch tc.differ {
				case 1:
					assert.NotZero(t, maxAbsDiff(a, c), "another seed, another perturbation")
				case -1:
					assert.Zero(t, maxAbsDiff(a, c), "no randomness without restarts")
				}
				return nil
			})
		})
	}
}

func TestKeepRNGDrawsFromTheCallersStream(t *testing.T) {
	f := trained(t, 10)
	onTorch(t, func() error {
		p := PGD{Eps: epsLinf, Steps: 2, RandomStart: true, KeepRNG: true}
		torchrt.Seed(3)
		a, err := p.Perturb(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		b, err := p.Perturb(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		torchrt.Seed(3)
		c, err := p.Perturb(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		defer drop(a, b, c)
		assert.NotZero(t, maxAbsDiff(a, b), "consecutive batches get fresh random starts")
		assert.Zero(t, maxAbsDiff(a, c), "the caller's seed decides")
		return nil
	})
}

// countingModel counts forward passes.
type countingModel struct {
	m     Model
	calls int
}

func (c *countingModel) forward(x *ts.Tensor) (*ts.Tensor, error) {
	c.calls++
	return c.m(x)
}

func TestTargetedAttacksUseClassesMinusOneTargets(t *testing.T) {
	for _, classes := range []int64{2, 3, 4} {
		f := trained(t, classes)
		t.Run(fmt.Sprintf("%d-classes", classes), func(t *testing.T) {
			want := int(classes - 1)
			assert.Equal(t, want, targetCount(9, classes))
			const steps = 4
			onTorch(t, func() error {
				// A radius too small to fool anyone makes every target run.
				cm := &countingModel{m: f.net.model()}
				adv, err := APGD{Eps: 1e-5, Steps: steps, Targeted: true, Targets: 9, Seed: 1}.Perturb(cm.forward, f.x, f.y)
				require.NoError(t, err)
				drop(adv)
				// clean check + class count, then per target: target logits,
				// the start and one gradient per step.
				assert.Equal(t, 2+want*(steps+2), cm.calls, "APGD-T forward passes")

				cm = &countingModel{m: f.net.model()}
				adv, err = FAB{Eps: 1e-5, Steps: steps, Targets: 9, Seed: 1}.Perturb(cm.forward, f.x, f.y)
				require.NoError(t, err)
				drop(adv)
				// clean check + class count, then per target: target logits,
				// a gradient and a prediction per step, the final check.
				assert.Equal(t, 2+want*(2*steps+2), cm.calls, "FAB-T forward passes")

				// And with a real radius the targeted attacks work.
				for _, a := range []Attack{
					APGD{Eps: 0.15, Steps: 10, Targeted: true, Seed: 1},
					FAB{Eps: 0.15, Steps: 10, Seed: 1},
					&AutoAttack{Eps: 0.15, Steps: 10, Queries: 50, Seed: 1},
				} {
					adv, err := a.Perturb(f.net.model(), f.x, f.y)
					require.NoError(t, err, a.Name())
					robust := countRight(f.net.model(), adv, f.y)
					drop(adv)
					t.Logf("%d classes, %s: clean %d robust %d", classes, a.Name(), f.cleanRight, robust)
					assert.Less(t, robust, f.cleanRight-10, a.Name())
				}
				return nil
			})
		})
	}
}

func TestAttacksLeaveMisclassifiedSamplesAlone(t *testing.T) {
	f := trained(t, 10)
	onTorch(t, func() error {
		// Relabel the first 10 samples: the model now gets them wrong.
		head := f.y.MustNarrow(0, 0, 10, false).MustAddScalar(ts.IntScalar(1), true).MustRemainder(ts.IntScalar(10), true)
		tail := f.y.MustNarrow(0, 10, size(f.y)[0]-10, false)
		y := ts.MustCat([]*ts.Tensor{head, tail}, 0)
		defer drop(head, tail, y)
		for _, a := range []Attack{
			APGD{Eps: epsLinf, Steps: 5, Seed: 1},
			APGD{Eps: epsLinf, Steps: 5, Targeted: true, Targets: 2, Seed: 1},
			FAB{Eps: epsLinf, Steps: 5, Targets: 2, Seed: 1},
			Square{Eps: 0.1, Queries: 50, Seed: 1},
			&AutoAttack{Eps: epsLinf, Steps: 5, Targets: 2, Queries: 20, Seed: 1},
		} {
			adv, err := a.Perturb(f.net.model(), f.x, y)
			require.NoError(t, err)
			assert.Zero(t, maxAbsDiff(adv.MustNarrow(0, 0, 10, false), f.x.MustNarrow(0, 0, 10, false)), a.Name())
			assert.NotZero(t, maxAbsDiff(adv, f.x), a.Name())
			drop(adv)
		}
		return nil
	})
}

func TestAutoAttackStagesAreCumulative(t *testing.T) {
	f := trained(t, 10)
	onTorch(t, func() error {
		aa := &AutoAttack{Eps: 0.055, Steps: 10, Targets: 3, Queries: 100, Seed: 1}
		adv, stages, err := aa.PerturbStages(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		defer drop(adv)
		require.Len(t, stages, 4)
		names := []string{}
		prev := f.cleanRight
		for _, st := range stages {
			names = append(names, st.Name)
			assert.LessOrEqual(t, st.Robust, prev, st.Name)
			prev = st.Robust
		}
		assert.Equal(t, []string{"apgd-ce", "apgd-t", "fab-t", "square"}, names)
		assert.Equal(t, prev, countRight(f.net.model(), adv, f.y), "the result is the per-sample worst case")
		assert.Less(t, prev, f.cleanRight)

		// The ensemble is at least as strong as its first component alone.
		ce, err := APGD{Eps: 0.055, Steps: 10, Seed: 1}.Perturb(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		defer drop(ce)
		assert.LessOrEqual(t, prev, countRight(f.net.model(), ce, f.y))
		return nil
	})
}

func TestFGSMIsOneSignedGradientStep(t *testing.T) {
	f := trained(t, 10)
	onTorch(t, func() error {
		adv, err := FGSM{Eps: epsLinf}.Perturb(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		defer drop(adv)
		// By hand: x + ε·sign(∇_x Σ CE), clipped to [0,1].
		leaf := f.x.MustDetachCopy(false).MustSetRequiresGrad(true, true)
		z, err := f.net.forward(leaf)
		require.NoError(t, err)
		loss := z.MustCrossEntropyLoss(f.y, ts.None, 2, -100, 0, true)
		g, err := ts.RunBackward([]*ts.Tensor{loss}, []*ts.Tensor{leaf}, false, false)
		require.NoError(t, err)
		want := f.x.MustAdd(g[0].MustSign(false).MustMulScalar(ts.FloatScalar(epsLinf), true), false).MustClamp(ts.FloatScalar(0), ts.FloatScalar(1), true)
		defer drop(leaf, loss, g[0], want)
		assert.Less(t, maxAbsDiff(adv, want), 1e-6)
		assert.Zero(t, f.net.gradSum())
		return nil
	})
}

func TestPGDRestartsKeepTheStrongestRun(t *testing.T) {
	f := trained(t, 10)
	onTorch(t, func() error {
		one := PGD{Eps: 0.05, Steps: 5, RandomStart: true, Seed: 4}
		three := one
		three.Restarts = 3
		a1, err := one.Perturb(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		a3, err := three.Perturb(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		defer drop(a1, a3)
		// The first run of both is the same; more runs can only fool more.
		r1, r3 := countRight(f.net.model(), a1, f.y), countRight(f.net.model(), a3, f.y)
		t.Logf("robust after 1 run %d, after 3 runs %d", r1, r3)
		assert.LessOrEqual(t, r3, r1)
		return nil
	})
}

func TestAttacksWorkOnAModelThatFreesNothing(t *testing.T) {
	// The model sees x, not a copy: attacks must not free or change it, and
	// a model in float64 would be rejected rather than silently mixed.
	f := trained(t, 10)
	onTorch(t, func() error {
		x64 := f.x.MustTotype(gotch.Double, false)
		defer drop(x64)
		_, err := PGD{Eps: epsLinf, Steps: 1}.Perturb(f.net.model(), x64, f.y)
		assert.Error(t, err, "a float32 model on float64 inputs fails with an error, not a crash")
		return nil
	})
}

// bnNet is batch norm → linear, to see which mode attacks run a module in.
type bnNet struct {
	bn  *nn.BatchNorm
	lin *nn.Linear
}

func (n *bnNet) ForwardT(x *ts.Tensor, train bool) *ts.Tensor {
	h := n.bn.ForwardT(x, train).MustFlatten(1, -1, true)
	defer h.MustDrop()
	return n.lin.Forward(h)
}

func TestFromModuleTAttacksInEvalMode(t *testing.T) {
	f := trained(t, 10)
	onTorch(t, func() error {
		vs := nn.NewVarStore(gotch.CPU)
		bn := nn.BatchNorm2D(vs.Root().Sub("bn"), 3, nn.DefaultBatchNormConfig())
		lin := nn.NewLinear(vs.Root().Sub("fc"), 192, 10, nn.DefaultLinearConfig())
		net := &bnNet{bn: bn, lin: lin}
		mean := func() float64 { return bn.RunningMean.MustAbs(false).MustSum(gotch.Double, true).Float64Values()[0] }

		adv, err := PGD{Eps: 0.1, Steps: 3, RandomStart: true}.Perturb(FromModuleT(net), f.x, f.y)
		require.NoError(t, err)
		drop(adv)
		assert.Zero(t, mean(), "eval mode: batch norm's running statistics stay put")
		for name, v := range vs.Variables() {
			g := v.MustGrad(false)
			if g.MustDefined() {
				assert.Zero(t, g.MustAbs(false).MustSum(gotch.Double, true).Float64Values()[0], name)
			}
		}

		// A training loop may attack in training mode by passing its own
		// Model: then batch norm uses and updates batch statistics.
		trainMode := func(x *ts.Tensor) (*ts.Tensor, error) { return net.ForwardT(x, true), nil }
		adv, err = PGD{Eps: 0.1, Steps: 3, RandomStart: true, KeepRNG: true}.Perturb(trainMode, f.x, f.y)
		require.NoError(t, err)
		drop(adv)
		assert.NotZero(t, mean())
		return nil
	})
}
