package attack

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/torchrt"
)

// Ascent is the step PGD and training share: from any start it stays in
// the ball and in [0,1], raises its objective, returns the start after
// zero steps, passes the objective's error on, and leaves no tensor behind
// but its result.
func TestAscent(t *testing.T) {
	f := trained(t, 4)
	objective := modelObjective(f.net.model(), ceLoss(f.y))
	value := func(delta *ts.Tensor) float64 {
		xin := must(f.x.Add(delta, false))
		defer drop(xin)
		gradMode(false)
		defer gradMode(true)
		l := must(objective(xin))
		defer drop(l)
		return floats(l)[0]
	}
	for _, a := range []Ascent{
		{Norm: Linf, Eps: 0.1, StepSize: 0.025, Steps: 6},
		{Norm: L2, Eps: 0.5, StepSize: 0.1, Steps: 6},
	} {
		t.Run(string(a.Norm), func(t *testing.T) {
			onTorch(t, func() error {
				torchrt.Seed(5)
				start, err := a.Start(f.x)
				require.NoError(t, err)
				defer drop(start)
				var delta *ts.Tensor
				left, err := torchrt.TensorsLeftBy(func() (err error) {
					delta, err = a.Run(f.x, start, objective)
					return err
				})
				require.NoError(t, err)
				defer drop(delta)
				assert.Equal(t, 1, left, "tensor handles left by Run besides its result")
				origin := must(delta.ZerosLike(false))
				defer drop(origin)
				for i, n := range perSampleNorms(delta, origin, a.Norm) {
					assert.LessOrEqual(t, n, a.Eps+1e-5, "sample %d outside the ball", i)
				}
				adv := must(f.x.Add(delta, false))
				defer drop(adv)
				v := floats(adv)
				assert.GreaterOrEqual(t, minOf(v), -1e-6)
				assert.LessOrEqual(t, maxOf(v), 1+1e-6)
				assert.Greater(t, value(delta), value(start), "the objective rose")

				zero := a
				zero.Steps = 0
				same, err := zero.Run(f.x, start, objective)
				require.NoError(t, err)
				defer drop(same)
				assert.Zero(t, maxAbsDiff(same, start), "zero steps return the start")

				boom := errors.New("boom")
				left, err = torchrt.TensorsLeftBy(func() error {
					_, err := a.Run(f.x, start, func(*ts.Tensor) (*ts.Tensor, error) { return nil, boom })
					return err
				})
				assert.ErrorIs(t, err, boom)
				assert.Zero(t, left, "tensor handles left by a failed Run")

				_, err = Ascent{Eps: 0.1}.Run(f.x, start, objective)
				assert.ErrorContains(t, err, "StepSize")
				return nil
			})
		})
	}
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
