package recipe

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseEps(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    float64
		wantErr string
	}{
		{"0.1", 0.1, ""},
		{" 0.0314 ", 0.0314, ""},
		{"8/255", 8.0 / 255, ""},
		{"8px", 8.0 / 255, ""},
		{"0", 0, ""},
		{"1", 1, ""},
		{"8", 0, "write 8/255 or 8px"},
		{"300px", 0, "must be in [0,1]"},
		{"-0.1", 0, "must be in [0,1]"},
		{"8/0", 0, "zero denominator"},
		{"abc", 0, "want a fraction"},
		{"", 0, "want a fraction"},
	} {
		got, err := ParseEps(tc.in)
		if tc.wantErr != "" {
			assert.ErrorContains(t, err, tc.wantErr, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.InDelta(t, tc.want, got, 1e-12, tc.in)
	}
}

func TestRecipeDefaults(t *testing.T) {
	fast := Recipe{Method: FGSMRS, Eps: 0.1, Epochs: 5}.WithDefaults()
	assert.Equal(t, OneCycle, fast.Schedule)
	assert.InDelta(t, 0.125, fast.StepSize, 1e-12) // 1.25·ε (Wong et al.)
	assert.Equal(t, 0.2, fast.LR)
	assert.Equal(t, 0.1, fast.EvalEps)
	assert.Equal(t, 20, fast.FinalSteps)
	require.NoError(t, fast.Validate())

	pgd := Recipe{Method: PGD, Eps: 8.0 / 255, Steps: 10, Epochs: 5}.WithDefaults()
	assert.InDelta(t, 2.5*8.0/255/10, pgd.StepSize, 1e-12)
	assert.Equal(t, Cosine, pgd.Schedule)

	trades := Recipe{Method: TRADES, Eps: 0.3, Epochs: 1}.WithDefaults()
	assert.Equal(t, 6.0, trades.Beta)

	plain := Recipe{Epochs: 1, NoMomentum: true, NoDecay: true}.WithDefaults()
	assert.Zero(t, plain.Momentum)
	assert.Zero(t, plain.WeightDecay)
	require.NoError(t, plain.Validate())
}

func TestRecipeValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		r       Recipe
		wantErr string
	}{
		{"unknown method", Recipe{Method: "fgsm", Epochs: 1}, `method "fgsm": allowed values are standard, fgsm-rs, pgd, trades`},
		{"adversarial with a negative eps", Recipe{Method: PGD, Eps: -0.1, Epochs: 1}, "method pgd needs a positive eps"},
		{"eps in pixels", Recipe{Method: PGD, Eps: 8, Epochs: 1}, "eps 8: must be in [0,1]"},
		{"negative epochs", Recipe{Epochs: -1}, "epochs -1: must be at least 1"},
		{"bad schedule", Recipe{Epochs: 1, Schedule: "linear"}, `schedule "linear": allowed values are onecycle, cosine, step, constant`},
		{"momentum 1", Recipe{Epochs: 1, Momentum: 1}, "momentum 1: must be in [0,1)"},
		{"nesterov without momentum", Recipe{Epochs: 1, NoMomentum: true, Nesterov: true}, "nesterov: needs a positive momentum"},
		{"batch of one", Recipe{Epochs: 1, BatchSize: 1}, "batch size 1"},
		{"label smoothing", Recipe{Epochs: 1, LabelSmoothing: 1}, "label smoothing 1: must be in [0,1)"},
		{"milestones", Recipe{Epochs: 10, Schedule: Step, Milestones: []float64{5, 3}}, "must be positive and increasing"},
		{"warm-up too long", Recipe{Epochs: 2, WarmupEpochs: 2}, "warmup epochs 2: must be in [0, epochs)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorContains(t, tc.r.WithDefaults().Validate(), tc.wantErr)
		})
	}
}

func TestParseL2Eps(t *testing.T) {
	for in, want := range map[string]float64{"8/255": 8.0 / 255, "0.5": 0.5, " 2 / 255 ": 2.0 / 255, "1e-2": 0.01, "1.5": 1.5} {
		got, err := ParseL2Eps(in)
		require.NoError(t, err, in)
		assert.InDelta(t, want, got, 1e-12, in)
	}
	for _, bad := range []string{"", "0", "-1", "8/0", "x/255", "8/y", "8px", "inf"} {
		_, err := ParseL2Eps(bad)
		assert.ErrorContains(t, err, "want a positive number", bad)
	}
}
