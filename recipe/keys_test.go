package recipe

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every JSON key of Recipe but precision (a command's, resolved per
// device) is a Key with help, and its flag is the key with dashes.
func TestEveryRecipeFieldIsAKey(t *testing.T) {
	keys := map[string]Key{}
	for _, k := range Keys() {
		keys[k.Name] = k
		assert.NotEmpty(t, k.Help, k.Name)
		assert.Equal(t, strings.ReplaceAll(k.Name, "_", "-"), k.Flag)
	}
	rt := reflect.TypeFor[Recipe]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name == "precision" {
			assert.NotContains(t, keys, name)
			continue
		}
		assert.Contains(t, keys, name, "field %s", rt.Field(i).Name)
	}
}

func TestKeyDefaultsAreWithDefaults(t *testing.T) {
	byName := map[string]Key{}
	for _, k := range Keys() {
		byName[k.Name] = k
	}
	for name, want := range map[string]any{
		"method": string(DefaultMethod), "eps": DefaultEps, "epochs": DefaultEpochs, "steps": DefaultSteps,
		"batch_size": DefaultBatchSize, "momentum": DefaultMomentum, "weight_decay": DefaultWeightDecay,
		"eval_steps": DefaultEvalSteps, "final_steps": DefaultFinalSteps, "overfit_drop": DefaultOverfitDrop,
		// Derived from other keys, or zero meaning off/all: no fixed default.
		"lr": nil, "schedule": nil, "step_size": nil, "eval_eps": nil, "eval_batch_size": nil,
		"eval_size": nil, "grad_clip": nil, "seed": nil,
	} {
		assert.Equal(t, want, byName[name].Default, name)
	}
}

func TestSetEveryKind(t *testing.T) {
	for _, tc := range []struct {
		key, text string
		check     func(Recipe) bool
	}{
		{"method", "pgd", func(r Recipe) bool { return r.Method == PGD }},
		{"eps", "8/255", func(r Recipe) bool { return r.Eps == 8.0/255 }},
		{"eps", "4px", func(r Recipe) bool { return r.Eps == 4.0/255 }},
		{"step_size", "0.01", func(r Recipe) bool { return r.StepSize == 0.01 }},
		{"batch_size", "64", func(r Recipe) bool { return r.BatchSize == 64 }},
		{"seed", "9000000000", func(r Recipe) bool { return r.Seed == 9_000_000_000 }},
		{"hflip", "true", func(r Recipe) bool { return r.HFlip }},
		{"milestones", "50, 75", func(r Recipe) bool { return reflect.DeepEqual(r.Milestones, []float64{50, 75}) }},
		{"momentum", "0", func(r Recipe) bool { return r.NoMomentum && r.WithDefaults().Momentum == 0 }},
		{"weight_decay", "0", func(r Recipe) bool { return r.NoDecay && r.WithDefaults().WeightDecay == 0 }},
		{"momentum", "0.8", func(r Recipe) bool { return !r.NoMomentum && r.Momentum == 0.8 }},
	} {
		var r Recipe
		require.NoError(t, r.Set(tc.key, tc.text), "%s=%s", tc.key, tc.text)
		assert.True(t, tc.check(r), "%s=%s gave %+v", tc.key, tc.text, r)
	}
	for _, tc := range []struct{ key, text, want string }{
		{"batch_size", "many", `batch_size "many"`},
		{"milestones", "50,x", "comma-separated numbers"},
		{"eps", "8//255", `eps "8//255"`},
		{"precision", "bf16", `recipe key "precision": unknown`},
		{"no_such_key", "1", `recipe key "no_such_key": unknown`},
	} {
		var r Recipe
		assert.ErrorContains(t, r.Set(tc.key, tc.text), tc.want, tc.key)
	}
}

// Set writes the same recipe a JSON (sweep-file) value of the key gives.
func TestSetAgreesWithJSON(t *testing.T) {
	var viaSet, viaJSON Recipe
	require.NoError(t, viaSet.Set("lr", "0.05"))
	require.NoError(t, viaSet.Set("crop_pad", "4"))
	require.NoError(t, json.Unmarshal([]byte(`{"lr": 0.05, "crop_pad": 4}`), &viaJSON))
	assert.Equal(t, viaJSON, viaSet)
}

func TestFormatEps(t *testing.T) {
	for v, want := range map[float64]string{8.0 / 255: "8/255", 0.1: "0.1", 0.5: "0.5", 2.0 / 255: "2/255"} {
		assert.Equal(t, want, FormatEps(v))
		got, err := ParseEps(want)
		require.NoError(t, err)
		assert.InDelta(t, v, got, 1e-15)
	}
}
