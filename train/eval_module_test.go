package train

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// evalModuleNet offers its own module for evaluation, as *model.Net does
// (its batch norms folded), and counts how Evaluate uses it.
type evalModuleNet struct {
	ts.ModuleT
	trainCalls, made, released int
}

func (n *evalModuleNet) ForwardT(x *ts.Tensor, train bool) *ts.Tensor {
	n.trainCalls++ // Evaluate must not call the net itself
	return n.ModuleT.ForwardT(x, train)
}

func (n *evalModuleNet) EvalModule() (ts.ModuleT, func(), error) {
	n.made++
	return n.ModuleT, func() { n.released++ }, nil
}

func TestEvaluateRunsTheEvalModule(t *testing.T) {
	lockThread(t)
	m := newModel(4)
	defer m.Vars.Destroy()
	d := synthetic(t, 0, 64)
	cfg := EvalConfig{Eps: 0.1, Steps: 3, BatchSize: 32, Seed: 5}
	want, err := Evaluate(context.Background(), m.Net, d.Test, gotch.CPU, cfg)
	require.NoError(t, err)

	wrapped := &evalModuleNet{ModuleT: m.Net}
	got, err := Evaluate(context.Background(), wrapped, d.Test, gotch.CPU, cfg)
	require.NoError(t, err)
	assert.Equal(t, 1, wrapped.made)
	assert.Equal(t, 1, wrapped.released)
	assert.Zero(t, wrapped.trainCalls)
	assert.Equal(t, want.CleanAcc, got.CleanAcc)
	assert.Equal(t, want.PGDAcc, got.PGDAcc)
}

// TRADES's attack runs in evaluation mode on fixed weights: on the eval
// module, made from the weights of the current step and freed after it.
func TestTRADESAttackRunsTheEvalModule(t *testing.T) {
	lockThread(t)
	m := newModel(6)
	defer m.Vars.Destroy()
	x, err := ts.Rand([]int64{8, 1, 16, 16}, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	defer x.MustDrop()
	wrapped := &evalModuleNet{ModuleT: m.Net}
	adv, err := perturbKL(wrapped, x, linf{eps: 0.1, step: 0.05, steps: 2})
	require.NoError(t, err)
	defer adv.MustDrop()
	assert.Equal(t, 1, wrapped.made)
	assert.Equal(t, 1, wrapped.released)
	assert.Zero(t, wrapped.trainCalls)
}
