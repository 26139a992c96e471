package trainrun

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/train"
)

// The checkpoint says what eval reads back: the radius the reported
// accuracy was measured at, the norm, and the whole recipe.
func TestCheckpointMetaCarriesTheRecipe(t *testing.T) {
	r := recipe.Recipe{Method: recipe.PGD, Eps: 0.1, EvalEps: 0.05, Epochs: 3, Seed: 42}.WithDefaults()
	s := train.Summary{Method: r.Method, Eps: r.Eps, EvalEps: r.EvalEps, Epoch: 2, CleanAcc: 0.8, PGDAcc: 0.6,
		PGDSteps: 20, EvalExamples: 500, Recipe: r}
	m := CheckpointMeta(Meta{Model: "micro", Dataset: "fashion-mnist"}, s)
	assert.Equal(t, "0.05", m["eval_eps"])
	assert.Equal(t, "Linf", m["norm"])
	assert.Equal(t, "pgd", m["method"])
	assert.Equal(t, "42", m["seed"])
	assert.Equal(t, "2", m["epoch"])
	acc, err := strconv.ParseFloat(m["pgd_acc"], 64)
	require.NoError(t, err)
	assert.Equal(t, 0.6, acc)
	var back recipe.Recipe
	require.NoError(t, json.Unmarshal([]byte(m["recipe"]), &back))
	assert.Equal(t, r, back)
}
