package evaluation

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/attack"
)

func TestWriteTable(t *testing.T) {
	base := Result{Model: "micro", Params: 1234, Dataset: "synthetic", Eps: 0.1, Norm: "Linf", Seed: 7, Precision: "fp32",
		From: map[string]string{"eps": FromCheckpoint, "norm": FromFlag, "dataset": FromDefault},
		Report: attack.Report{N: 8, CleanAcc: 0.75, RobustAcc: 0.25, Attacks: []string{"pgd3", "aa"},
			PerAttack: map[string]float64{"pgd3": 0.5, "aa": 0.25}, Seconds: map[string]float64{"pgd3": 1.25, "aa": 3},
			Stages: map[string][]attack.StageAcc{"aa": {{Attack: "apgd-ce", RobustAcc: 0.375}}}}}
	for _, tc := range []struct {
		name    string
		edit    func(*Result)
		want    []string
		wantNot []string
	}{
		{"plain", func(*Result) {}, []string{
			"micro (1234 parameters) on synthetic: 8 examples, Linf eps 0.1, seed 7, fp32 forward passes\n",
			"eps from the checkpoint, norm from the command line, dataset from the defaults\n",
			"clean", "0.7500    6/8", "pgd3", "0.5000    4/8      1.2", "  after apgd-ce", "0.3750    3/8", "worst case", "0.2500    2/8",
		}, []string{"note:", "warning:"}},
		{"off radius", func(r *Result) { r.TrainedEps = 8.0 / 255 },
			[]string{"note: eps 0.1 is not the radius the checkpoint was trained and reported at (0.03137)"}, nil},
		{"low precision", func(r *Result) { r.Precision = "bf16" },
			[]string{"bf16 forward passes", "note: evaluated in bf16, not fp32"}, nil},
		{"warnings", func(r *Result) { r.Warnings = []string{"square beat the white-box attacks"} },
			[]string{"\nwarning: square beat the white-box attacks\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			var b strings.Builder
			require.NoError(t, WriteTable(&b, r))
			for _, s := range tc.want {
				assert.Contains(t, b.String(), s)
			}
			for _, s := range tc.wantNot {
				assert.NotContains(t, b.String(), s)
			}
		})
	}
}
