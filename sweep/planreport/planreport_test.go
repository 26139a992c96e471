package planreport

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

func plan(t *testing.T, name string) (*sweep.File, *sweep.Plan) {
	t.Helper()
	f, err := sweep.LoadFile(name)
	require.NoError(t, err)
	p, err := sweep.MakePlan(f)
	require.NoError(t, err)
	return f, p
}

func TestGuidelinesOf(t *testing.T) {
	_, p := plan(t, "fashion-mnist-micro")
	base := p.Variants[0]
	var depths sweep.Variant
	for _, v := range p.Variants {
		if v.Name == "stage_depths=1,1,1" {
			depths = v
		}
	}
	require.NotEmpty(t, depths.Name)
	infeasible := depths
	infeasible.Feasible = false
	for _, tc := range []struct {
		name    string
		v       sweep.Variant
		numbers []int
		text    string
	}{
		{"baseline", base, nil, "—"},
		{"infeasible", infeasible, nil, "—"},
		{"random sample", sweep.Variant{Factor: string(sweep.Random), Feasible: true}, nil, "—"},
		{"a whole spec", sweep.Variant{Factor: sweep.FactorSpec, Feasible: true}, nil, "combined"},
		{"no guideline", sweep.Variant{Factor: "x", Feasible: true, Spec: base.Spec}, nil, "none"},
		{"shallower-wider", depths, []int{1}, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, text := GuidelinesOf(base, tc.v)
			assert.Equal(t, tc.numbers, ns)
			assert.Equal(t, tc.text, text)
		})
	}
	assert.Equal(t, results.BaselineFactor, base.Factor)
}

func TestMaxTrials(t *testing.T) {
	for _, tc := range []struct {
		variants int
		seeds    study.Seeds
		want     int
	}{
		{4, study.Seeds{Max: 5}, 20},
		{4, study.Seeds{Max: 5, MaxTrials: 12}, 12},
		{4, study.Seeds{Max: 2, MaxTrials: 12}, 8},
	} {
		assert.Equal(t, tc.want, MaxTrials(tc.variants, tc.seeds), "%+v", tc)
	}
}

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		sweep string
		want  []string
	}{
		{"fashion-mnist-micro", []string{"sweep fashion-mnist-micro: budget", "VARIANT", "PARAMS", "GUIDELINES",
			"no level bears on 3 stage-depths, 4 two-groups", "variants feasible"}},
		{"fashion-mnist-findings", []string{"every one judged from pairs of networks has a level"}},
	} {
		t.Run(tc.sweep, func(t *testing.T) {
			f, p := plan(t, tc.sweep)
			var b strings.Builder
			require.NoError(t, Write(&b, f, p))
			for _, s := range tc.want {
				assert.Contains(t, b.String(), s)
			}
			// The sweep line, the table's header and rows, GUIDELINES, the
			// infeasible variants, the count of trials.
			assert.Len(t, strings.Split(strings.TrimSpace(b.String()), "\n"), len(p.Variants)+countInfeasible(p)+4)
		})
	}
}

func countInfeasible(p *sweep.Plan) int {
	n := 0
	for _, v := range p.Variants {
		if !v.Feasible {
			n++
		}
	}
	return n
}

// --json is the variants as an array that reads back whole.
func TestWriteJSON(t *testing.T) {
	_, p := plan(t, "fashion-mnist-micro")
	var buf strings.Builder
	require.NoError(t, WriteJSON(&buf, p))
	assert.True(t, strings.HasPrefix(buf.String(), "[\n  {"), buf.String()[:20])
	var back []sweep.Variant
	require.NoError(t, json.Unmarshal([]byte(buf.String()), &back))
	assert.Equal(t, p.Variants, back)
}
