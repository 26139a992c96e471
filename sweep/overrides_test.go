package sweep

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flagValue is a given flag as pflag holds it.
type flagValue struct{ text, typ string }

func (v flagValue) String() string { return v.text }
func (v flagValue) Type() string   { return v.typ }

// Given flags replace their keys (lists by their items), flags outside
// FlagKeys are ignored, and the seed offset adds to the file's.
func TestOverridesLoad(t *testing.T) {
	o := Overrides{
		Set: []string{"train.lr=0.05"},
		Flags: map[string]FlagValue{
			"epochs":  flagValue{"3", "int"},
			"seeds":   flagValue{"[4,5]", "int64Slice"},
			"attacks": flagValue{"[pgd10,aa]", "stringSlice"},
			"eps":     flagValue{"8/255", "string"},
			"dry-run": flagValue{"true", "bool"},
		},
		SeedOffset: 100,
	}
	f, err := o.Load("fashion-mnist-micro")
	require.NoError(t, err)
	assert.Equal(t, 3, f.Train.Epochs)
	assert.Equal(t, 0.05, f.Train.LR)
	assert.Equal(t, []int64{4, 5}, f.Seeds.List)
	assert.Equal(t, []int64{104, 105}, f.Seeds.Order())
	assert.Equal(t, []string{"pgd10", "aa"}, f.Eval.Attacks)
	assert.Equal(t, 8.0/255, f.Train.Eps)
}

func TestOverridesRefuse(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Overrides
		want string
	}{
		{"flag and --set", Overrides{Set: []string{"train.epochs=4"}, Flags: map[string]FlagValue{"epochs": flagValue{"3", "int"}}},
			"--epochs and --set train.epochs both replace sweep key train.epochs: give one"},
		{"negative offset", Overrides{SeedOffset: -1}, "--seed-offset -1: want 0 or more"},
		{"bad --set", Overrides{Set: []string{"train.lr"}}, "want key=value"},
		{"bad flag value", Overrides{Flags: map[string]FlagValue{"eps": flagValue{"eight", "string"}}}, "train.eps"},
	} {
		_, err := tc.o.Load("fashion-mnist-micro")
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
}
