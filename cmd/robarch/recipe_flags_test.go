package main

import (
	"encoding/json"
	"fmt"
	"maps"
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

	// Non-default values for every key, through the real flag parsing:
	// the keys every recipe reads, with each method's and schedule's own
	// keys in the run whose method or schedule reads them (others are
	// refused: TestTrainCommandRejectsBadFlags).
	common := map[string]string{
		"eps": "4/255", "epochs": "4", "batch-size": "64", "batch-shards": "2", "lr": "0.05", "momentum": "0.8",
		"no-momentum": "false", "nesterov": "true", "weight-decay": "1e-4", "no-decay": "false",
		"label-smoothing": "0.1", "grad-clip": "1", "crop-pad": "2", "hflip": "true", "seed": "11",
		"eval-size": "100", "eval-steps": "4", "final-size": "200", "final-steps": "7", "eval-eps": "2/255",
		"eval-batch-size": "32", "overfit-drop": "0.3", "stop-on-overfit": "true",
	}
	runs := []map[string]string{
		{"method": "trades", "step-size": "1/255", "steps": "3", "beta": "2", "schedule": "step", "milestones": "2,3", "gamma": "0.5"},
		{"method": "pgd", "schedule": "onecycle", "peak-at": "0.3"},
		{"method": "fgsm-rs", "schedule": "cosine", "warmup-epochs": "1"},
	}
	covered := map[string]bool{}
	for _, own := range runs {
		given := maps.Clone(common)
		maps.Copy(given, own)
		args := []string{"--model", "micro", "--out", t.TempDir()}
		for flag, v := range given {
			args = append(args, "--"+flag+"="+v)
			covered[flag] = true
		}
		v := viper.New()
		cmd = newTrainCmd(v)
		require.NoError(t, cmd.ParseFlags(args))
		require.NoError(t, v.BindPFlags(cmd.Flags()))
		c, err := trainConfigFrom(cmd.Flags(), v)
		require.NoError(t, err, own)
		var want recipe.Recipe
		for flag, v := range given {
			require.NoError(t, want.Set(flagKey(flag), v))
		}
		assert.Equal(t, want.WithDefaults(), c.recipe, own)
		got, _ := json.Marshal(c.recipe)
		assert.Contains(t, string(got), `"method":"`+own["method"]+`"`)
		assert.Equal(t, 4.0/255, c.recipe.Eps)
	}
	for _, k := range recipe.Keys() {
		assert.True(t, covered[k.Flag], "the test gives no value for --%s", k.Flag)
	}
}

func flagKey(flag string) string {
	for _, k := range recipe.Keys() {
		if k.Flag == flag {
			return k.Name
		}
	}
	return flag
}
