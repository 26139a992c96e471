package guidelines

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

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
