package store

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/robarch/robarch/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExportCSVColumns(t *testing.T) {
	trials := []results.Trial{
		{Sweep: "s", Variant: "kernel=5", Factor: "kernel", Level: "5", Seed: 2, Params: 25_000_000, MACs: 4_100_000_000,
			WidthDepthRatio: 2.25, Status: results.StatusDone, Seconds: 12.5,
			Metrics: map[string]float64{results.CleanAcc: 0.5, results.AAAcc: 0.25, "b_extra": 3, "a_extra": 1e-9}},
		{Sweep: "s", Variant: `quote"d,comma`, Factor: results.BaselineFactor, Seed: 1, Status: results.StatusPending},
	}
	var buf bytes.Buffer
	require.NoError(t, Export(&buf, FormatCSV, trials))
	assert.Equal(t, strings.Join([]string{
		"sweep,variant,factor,level,seed,params,macs,width_depth_ratio,status,clean_acc,pgd_acc,aa_acc,seconds,a_extra,b_extra",
		"s,kernel=5,kernel,5,2,25000000,4100000000,2.25,done,0.5,,0.25,12.5,1e-09,3",
		`s,"quote""d,comma",baseline,,1,0,0,0,pending,,,,0,,`,
		"",
	}, "\n"), buf.String())
}

func TestExportJSONKeepsNonFiniteMetrics(t *testing.T) {
	in := []results.Trial{{Sweep: "s", Variant: "v", Seed: 1, Status: results.StatusDone,
		Metrics:    map[string]float64{"nan": math.NaN(), "pinf": math.Inf(1), "ninf": math.Inf(-1), "x": 0.125},
		FinishedAt: time.Date(2026, 11, 3, 4, 5, 6, 7, time.UTC)}}
	var buf bytes.Buffer
	require.NoError(t, Export(&buf, FormatJSON, in))
	assert.Contains(t, buf.String(), `"nan": "NaN"`)
	assert.Contains(t, buf.String(), `"pinf": "+Inf"`)
	assert.Contains(t, buf.String(), `"x": 0.125`)
	out, err := Decode(&buf, FormatJSON)
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.True(t, math.IsNaN(out[0].Metrics["nan"]))
	assert.True(t, math.IsInf(out[0].Metrics["pinf"], 1))
	assert.True(t, math.IsInf(out[0].Metrics["ninf"], -1))
	assert.Equal(t, 0.125, out[0].Metrics["x"])
	assert.True(t, in[0].FinishedAt.Equal(out[0].FinishedAt))
}

func TestExportRejectsUnknownFormat(t *testing.T) {
	err := Export(&bytes.Buffer{}, "xlsx", nil)
	assert.ErrorContains(t, err, `format "xlsx"; allowed: csv, json`)
	_, err = Decode(strings.NewReader(""), "yaml")
	assert.ErrorContains(t, err, `format "yaml"; allowed: csv, json`)
}

func TestDecodeCSVErrors(t *testing.T) {
	header := "sweep,variant,factor,level,seed,params,macs,width_depth_ratio,status,clean_acc,pgd_acc,aa_acc,seconds"
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "no header"},
		{"foreign header", "a,b,c\n", "must start with"},
		{"bad seed", header + "\ns,v,f,l,x,0,0,0,done,,,,0\n", "line 2: column seed"},
		{"bad metric", header + "\ns,v,f,l,1,0,0,0,done,high,,,0\n", "line 2: column clean_acc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in), FormatCSV)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
