package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/spf13/viper"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/recipe"
)

// Every recipe key is a train flag with the recipe's help and default, and
// a value given to the flag reaches the recipe train runs.
func TestTrainFlagsAreTheRecipesKeys(t *testing.T) {
	cmd := newTrainCmd(viper.New())
	for _, k := range recipe.Keys() {
		fl := cmd.Flags().Lookup(k.Flag)
		require.NotNil(t, fl, "recipe key %s has no flag", k.Name)
		assert.Equal(t, k.Help, fl.Usage)
		switch d := k.Default.(type) {
		case nil:
			assert.Contains(t, []string{"", "0", "false"}, fl.DefValue, "%s has no fixed default", k.Flag)
		case float64:
			if k.Kind == recipe.KindRadius {
				assert.Equal(t, recipe.FormatEps(d), fl.DefValue, k.Flag)
			} else {
				assert.Equal(t, fmt.Sprint(d), fl.DefValue, k.Flag)
			}
		default:
			assert.Equal(t, fmt.Sprint(d), fl.DefValue, k.Flag)
		}
	}

	// Non-default values for every key, through the real flag parsing.
	given := map[string]string{
		"method": "pgd", "eps": "4/255", "step-size": "1/255", "steps": "3", "beta": "2", "epochs": "4",
		"batch-size": "64", "batch-shards": "2", "lr": "0.05", "momentum": "0.8", "no-momentum": "false", "nesterov": "true",
		"weight-decay": "1e-4", "no-decay": "false", "schedule": "step", "peak-at": "0.3", "warmup-epochs": "0",
		"milestones": "2,3", "gamma": "0.5", "label-smoothing": "0.1", "grad-clip": "1", "crop-pad": "2",
		"hflip": "true", "seed": "11", "eval-size": "100", "eval-steps": "4", "final-size": "200", "final-steps": "7",
		"eval-eps": "2/255", "eval-batch-size": "32", "overfit-drop": "0.3", "stop-on-overfit": "true",
	}
	args := []string{"--model", "micro", "--out", t.TempDir()}
	for _, k := range recipe.Keys() {
		v, ok := given[k.Flag]
		require.True(t, ok, "the test gives no value for --%s", k.Flag)
		args = append(args, "--"+k.Flag+"="+v)
	}
	v := viper.New()
	cmd = newTrainCmd(v)
	require.NoError(t, cmd.ParseFlags(args))
	require.NoError(t, v.BindPFlags(cmd.Flags()))
	c, err := trainConfigFrom(cmd.Flags(), v)
	require.NoError(t, err)
	var want recipe.Recipe
	for flag, v := range given {
		require.NoError(t, want.Set(flagKey(flag), v))
	}
	assert.Equal(t, want.WithDefaults(), c.recipe)
	got, _ := json.Marshal(c.recipe)
	assert.Contains(t, string(got), `"method":"pgd"`)
	assert.Equal(t, 4.0/255, c.recipe.Eps)
	assert.Equal(t, []float64{2, 3}, c.recipe.Milestones)
}

func flagKey(flag string) string {
	for _, k := range recipe.Keys() {
		if k.Flag == flag {
			return k.Name
		}
	}
	return flag
}
