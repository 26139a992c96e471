package guidelines

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
)

// The report orders exactly the factors a sweep can vary: a factor added
// to sweep's vocabulary must get a place in the report, and the report
// must not present a name the planner does not know.
func TestReportOrderIsSweepVocabulary(t *testing.T) {
	got := slices.Clone(reportOrder)
	slices.Sort(got)
	assert.Equal(t, sweep.FactorNames(), got)
}

// Findings are judged from the specs a sweep trained, never from level
// strings: renaming every level leaves every outcome as it was.
func TestFindingsIgnoreLevelStrings(t *testing.T) {
	trials := synthSweep(t, 3, false, silu, kernel5, se25)
	a, err := Analyze(trials, Options{})
	require.NoError(t, err)
	renamed := slices.Clone(trials)
	for i := range renamed {
		if renamed[i].Factor != results.BaselineFactor {
			renamed[i].Level = fmt.Sprintf("renamed-%d", len(renamed[i].Variant))
			renamed[i].Variant = renamed[i].Factor + "=" + renamed[i].Level + "-" + renamed[i].Variant
		}
	}
	b, err := Analyze(renamed, Options{})
	require.NoError(t, err)
	require.Len(t, b.Findings, len(a.Findings))
	agrees := 0
	for i := range a.Findings {
		assert.Equal(t, a.Findings[i].Outcome, b.Findings[i].Outcome, a.Findings[i].ID)
		if a.Findings[i].Outcome == Agrees {
			agrees++
		}
	}
	assert.Positive(t, agrees, "the synthetic sweep agrees with some findings")
}
